//! A stand-in for the Telegram Bot API on 127.0.0.1, faithful where the
//! monitor depends on it:
//!
//! * HTTP/1.1 with keep-alive, `Content-Length` or chunked request bodies,
//!   `Expect: 100-continue`; JSON, form-urlencoded and query parameters.
//! * Routing `/bot<token>/<method>`: a wrong token answers 401
//!   `Unauthorized`, an unknown method 404 `Not Found`, both in Telegram's
//!   JSON envelope.
//! * `getMe`, and `sendMessage` validated like Telegram: empty text, text
//!   over 4096 UTF-16 units after entity parsing, HTML that does not parse
//!   (unknown or unclosed tags, bare `<` or `&`), unknown chats, blocked
//!   chats (403), groups upgraded to supergroups (400 with
//!   `migrate_to_chat_id`), and per-chat flood control (429 with
//!   `retry_after` and a `Retry-After` header) when a chat gets a second
//!   message within the flood interval (1 s unless configured).
//! * Scripted faults by request number or for a chat's next requests: see
//!   [`Fault`].
//!
//! Every request and every delivered message is recorded with the instant
//! the mock handled it, for assertions on order and on lower bounds of
//! time; tests wait on [`MockBotApi::wait_for`], never on sleeps.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// What a scripted request gets instead of (or before) normal handling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 500 with Telegram's JSON envelope.
    InternalError,
    /// 502 with an HTML body, as a proxy in front of Telegram sends.
    BadGatewayHtml,
    /// Handle normally, after this delay.
    Delay(Duration),
    /// Read the request and never answer (until the mock stops).
    Hang,
    /// Read the request and reset the connection (RST).
    Reset,
    /// Deliver the message, then never answer: the client cannot know it
    /// was delivered.
    RecordThenHang,
    /// 403 "Forbidden: bot was blocked by the user".
    Forbidden,
    /// 429 with `retry_after` seconds.
    TooManyRequests(u64),
    /// 400 "can't parse entities", whatever the text.
    CantParseEntities,
    /// 400 "group chat was upgraded to a supergroup chat" with this id.
    MigrateTo(i64),
    /// This status with Telegram's envelope and this `description`.
    ApiError(u16, String),
    /// Deliver the message, then answer 200 with a body that is not JSON.
    OkNotJson,
    /// Deliver the message, then answer 200 with a body that is not UTF-8.
    OkNotUtf8,
    /// Deliver the message, then answer 200 with a `Content-Length` longer
    /// than the body, and close the connection.
    OkTruncated,
    /// Deliver the message, then answer 200 with valid JSON this many bytes long.
    OkHuge(usize),
}

/// How a chat behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ChatState {
    Open {
        kind: &'static str,
    },
    /// The user blocked the bot (or it was kicked): 403.
    Blocked,
    /// A group that became this supergroup: 400 with `migrate_to_chat_id`.
    MigratedTo(i64),
}

/// A message the mock accepted.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivered {
    pub chat_id: i64,
    /// The text as sent (HTML source when `parse_mode` is HTML).
    pub text: String,
    pub parse_mode: Option<String>,
    pub disable_notification: bool,
    pub message_thread_id: Option<i64>,
    pub link_preview_disabled: bool,
    /// When the mock accepted it.
    pub at: Instant,
}

/// A request the mock received.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// 1-based, in arrival order over all connections.
    pub n: u64,
    /// Lower-cased Bot API method (`sendmessage`), or the raw path when it
    /// did not route.
    pub method: String,
    /// The `chat_id` parameter as sent.
    pub chat: Option<String>,
    /// When the request was completely read.
    pub at: Instant,
    /// The status answered; `None` when it hung or was reset.
    pub status: Option<u16>,
}

/// Everything the mock knows, under one lock.
#[derive(Debug)]
struct World {
    token: String,
    chats: HashMap<i64, ChatState>,
    usernames: HashMap<String, i64>,
    flood_interval: Option<Duration>,
    last_accepted: HashMap<i64, Instant>,
    by_request: HashMap<u64, Fault>,
    by_chat: HashMap<i64, VecDeque<Fault>>,
    requests: Vec<Request>,
    messages: Vec<Delivered>,
    next_request: u64,
}

#[derive(Debug)]
struct Shared {
    world: Mutex<World>,
    /// Notified on every recorded request or message, and on stop.
    changed: Condvar,
    stop: AtomicBool,
    /// Open connections (clones), shut down when the mock stops.
    connections: Mutex<HashMap<u64, TcpStream>>,
}

impl Shared {
    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until the mock stops.
    fn hang(&self) {
        let mut world = self.world();
        while !self.stop.load(Ordering::SeqCst) {
            world = self.changed.wait(world).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Configures chats and flood control before [`MockBuilder::start`].
pub struct MockBuilder {
    world: World,
}

impl MockBuilder {
    /// A private chat with a user (positive id).
    pub fn private_chat(mut self, id: i64) -> Self {
        self.world.chats.insert(id, ChatState::Open { kind: "private" });
        self
    }

    /// A group or supergroup (negative id).
    pub fn group(mut self, id: i64) -> Self {
        self.world.chats.insert(id, ChatState::Open { kind: "supergroup" });
        self
    }

    /// A public channel reachable as `@username`.
    pub fn channel(mut self, id: i64, username: &str) -> Self {
        self.world.chats.insert(id, ChatState::Open { kind: "channel" });
        self.world.usernames.insert(username.to_ascii_lowercase(), id);
        self
    }

    /// A chat whose user blocked the bot.
    pub fn blocked_chat(mut self, id: i64) -> Self {
        self.world.chats.insert(id, ChatState::Blocked);
        self
    }

    /// A group that was upgraded to supergroup `to`.
    pub fn migrated_group(mut self, from: i64, to: i64) -> Self {
        self.world.chats.insert(from, ChatState::MigratedTo(to));
        self.world.chats.insert(to, ChatState::Open { kind: "supergroup" });
        self
    }

    /// Minimum time between two messages to one chat before 429s
    /// (`None`: no flood control). Default 1 s, as Telegram.
    pub fn flood_interval(mut self, interval: Option<Duration>) -> Self {
        self.world.flood_interval = interval;
        self
    }

    /// Binds 127.0.0.1:0 and starts serving.
    pub fn start(self) -> MockBotApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            world: Mutex::new(self.world),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            connections: Mutex::new(HashMap::new()),
        });
        let accept = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || accept_loop(listener, shared))
        };
        MockBotApi { addr, shared, accept: Some(accept) }
    }
}

/// A running mock; stops (and releases every hanging request) on drop.
pub struct MockBotApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl MockBotApi {
    /// A mock that accepts `token` and knows no chats yet.
    pub fn builder(token: &str) -> MockBuilder {
        MockBuilder {
            world: World {
                token: token.to_string(),
                chats: HashMap::new(),
                usernames: HashMap::new(),
                flood_interval: Some(Duration::from_secs(1)),
                last_accepted: HashMap::new(),
                by_request: HashMap::new(),
                by_chat: HashMap::new(),
                requests: Vec::new(),
                messages: Vec::new(),
                next_request: 1,
            },
        }
    }

    /// `http://127.0.0.1:<port>`, for `telegram.api_base`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Scripts request number `n` (1-based, every request counts).
    pub fn fault_on_request(&self, n: u64, fault: Fault) {
        self.shared.world().by_request.insert(n, fault);
    }

    /// Scripts the next `sendMessage` for `chat` (calls queue up in order).
    pub fn fault_for_chat(&self, chat: i64, fault: Fault) {
        self.shared.world().by_chat.entry(chat).or_default().push_back(fault);
    }

    /// Every message accepted so far, in order.
    pub fn messages(&self) -> Vec<Delivered> {
        self.shared.world().messages.clone()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.world().requests.clone()
    }

    /// Waits until `done(messages, requests)` holds; panics with `what`
    /// after `timeout` (a generous bound for a stuck test, not a speed
    /// requirement).
    pub fn wait_for(&self, what: &str, timeout: Duration, done: impl Fn(&[Delivered], &[Request]) -> bool) {
        let deadline = Instant::now() + timeout;
        let mut world = self.shared.world();
        while !done(&world.messages, &world.requests) {
            let now = Instant::now();
            assert!(
                now < deadline,
                "mock Bot API: gave up waiting for {what}; messages: {:#?}; requests: {:#?}",
                world.messages,
                world.requests
            );
            world = self.shared.changed.wait_timeout(world, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

impl Drop for MockBotApi {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        {
            let _world = self.shared.world();
            self.shared.changed.notify_all();
        }
        for (_, conn) in self.shared.connections.lock().unwrap_or_else(|e| e.into_inner()).drain() {
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut next_id = 0u64;
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        next_id += 1;
        let id = next_id;
        if let Ok(clone) = stream.try_clone() {
            shared.connections.lock().unwrap_or_else(|e| e.into_inner()).insert(id, clone);
        }
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || {
            let _ = serve_connection(id, stream, &shared);
            shared.connections.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        });
    }
}

/// A parsed HTTP request (Telegram treats GET and POST alike, so the verb is not kept).
struct HttpRequest {
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What to do with a handled request.
enum Reply {
    Answer {
        status: u16,
        body: String,
        content_type: &'static str,
        retry_after: Option<u64>,
    },
    /// Written as is, then the connection is closed.
    Raw {
        status: u16,
        content_length: usize,
        body: Vec<u8>,
    },
    Hang,
    Reset,
}

impl Reply {
    /// The answer `fault` makes of a successful `sendMessage` answer.
    fn spoiled(self, fault: &Fault) -> Reply {
        if !matches!(self, Reply::Answer { status: 200, .. }) {
            return self;
        }
        match fault {
            Fault::OkNotJson => Reply::Answer {
                status: 200,
                body: "<html><body>\n\x1b[31mOK\x1b[0m</body></html>".into(),
                content_type: "text/html",
                retry_after: None,
            },
            Fault::OkNotUtf8 => Reply::Raw { status: 200, content_length: 4, body: vec![0xff, 0xfe, b'{', 0x80] },
            Fault::OkTruncated => {
                Reply::Raw { status: 200, content_length: 1000, body: br#"{"ok":true,"result":{"mess"#.to_vec() }
            }
            Fault::OkHuge(len) => {
                let mut body = br#"{"ok":true,"result":{"message_id":1},"padding":""#.to_vec();
                body.resize(len.saturating_sub(2).max(body.len()), b'x');
                body.extend_from_slice(b"\"}");
                Reply::Raw { status: 200, content_length: body.len(), body }
            }
            _ => self,
        }
    }
}

/// Serves requests on one keep-alive connection until the client closes it.
fn serve_connection(id: u64, stream: TcpStream, shared: &Shared) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let Some(request) = read_request(&mut reader, &mut writer)? else { return Ok(()) };
        let close = request.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        match handle(&request, shared) {
            Reply::Answer { status, body, content_type, retry_after } => {
                let mut head = format!(
                    "HTTP/1.1 {status} {}\r\nServer: mock-bot-api\r\nContent-Type: {content_type}\r\n\
                     Content-Length: {}\r\nConnection: {}\r\n",
                    reason(status),
                    body.len(),
                    if close { "close" } else { "keep-alive" }
                );
                if let Some(secs) = retry_after {
                    head.push_str(&format!("Retry-After: {secs}\r\n"));
                }
                head.push_str("\r\n");
                writer.write_all(head.as_bytes())?;
                writer.write_all(body.as_bytes())?;
                writer.flush()?;
                if close {
                    return Ok(());
                }
            }
            Reply::Raw { status, content_length, body } => {
                let head = format!(
                    "HTTP/1.1 {status} {}\r\nServer: mock-bot-api\r\nContent-Type: application/json\r\n\
                     Content-Length: {content_length}\r\nConnection: close\r\n\r\n",
                    reason(status)
                );
                writer.write_all(head.as_bytes())?;
                writer.write_all(&body)?;
                writer.flush()?;
                return Ok(());
            }
            Reply::Hang => {
                shared.hang();
                return Ok(());
            }
            Reply::Reset => {
                shared.connections.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                reset(writer);
                return Ok(());
            }
        }
    }
}

/// Closes with RST instead of FIN (SO_LINGER with a zero timeout).
fn reset(stream: TcpStream) {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: a valid socket descriptor and a correctly sized `linger`.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(stream);
}

/// Reads one request; `None` when the client closed the connection.
fn read_request(reader: &mut BufReader<TcpStream>, writer: &mut TcpStream) -> io::Result<Option<HttpRequest>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let Some(target) = line.split_whitespace().nth(1).map(str::to_string) else {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("bad request line {line:?}")));
    };
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 {
            return Ok(None);
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut request = HttpRequest { target, headers, body: Vec::new() };
    if request.header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    if request.header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if size == 0 {
                // Trailers end with an empty line.
                loop {
                    let mut t = String::new();
                    if reader.read_line(&mut t)? == 0 || t.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            request.body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(len) = request.header("content-length") {
        let len: usize = len.parse().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        request.body = vec![0; len];
        reader.read_exact(&mut request.body)?;
    }
    Ok(Some(request))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        _ => "Unknown",
    }
}

fn error(status: u16, description: &str) -> Reply {
    let body = json!({"ok": false, "error_code": status, "description": description}).to_string();
    Reply::Answer { status, body, content_type: "application/json", retry_after: None }
}

fn too_many_requests(retry_after: u64) -> Reply {
    let body = json!({
        "ok": false,
        "error_code": 429,
        "description": format!("Too Many Requests: retry after {retry_after}"),
        "parameters": {"retry_after": retry_after}
    })
    .to_string();
    Reply::Answer { status: 429, body, content_type: "application/json", retry_after: Some(retry_after) }
}

fn migrated(to: i64) -> Reply {
    let body = json!({
        "ok": false,
        "error_code": 400,
        "description": "Bad Request: group chat was upgraded to a supergroup chat",
        "parameters": {"migrate_to_chat_id": to}
    })
    .to_string();
    Reply::Answer { status: 400, body, content_type: "application/json", retry_after: None }
}

fn ok(result: Value) -> Reply {
    Reply::Answer {
        status: 200,
        body: json!({"ok": true, "result": result}).to_string(),
        content_type: "application/json",
        retry_after: None,
    }
}

/// Routes, applies scripted faults, validates and records one request.
fn handle(request: &HttpRequest, shared: &Shared) -> Reply {
    let received = Instant::now();
    let path = request.target.split('?').next().unwrap_or("");
    let route = path.strip_prefix("/bot").and_then(|rest| rest.split_once('/'));
    let params = parameters(request);
    let chat = params.get("chat_id").map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let n = {
        let mut world = shared.world();
        let n = world.next_request;
        world.next_request += 1;
        world.requests.push(Request {
            n,
            method: route.map_or_else(|| path.to_string(), |(_, m)| m.to_ascii_lowercase()),
            chat: chat.clone(),
            at: received,
            status: None,
        });
        n
    };
    let mut fault = {
        let mut world = shared.world();
        let chat_id = chat.as_deref().and_then(|c| world.resolve(c));
        let is_send = route.is_some_and(|(_, m)| m.eq_ignore_ascii_case("sendMessage"));
        world.by_request.remove(&n).or_else(|| {
            chat_id.filter(|_| is_send).and_then(|id| world.by_chat.get_mut(&id).and_then(VecDeque::pop_front))
        })
    };
    if let Some(Fault::Delay(d)) = fault {
        std::thread::sleep(d);
        fault = None;
    }
    let reply = match (&fault, route) {
        (Some(Fault::Hang), _) => Reply::Hang,
        (Some(Fault::Reset), _) => Reply::Reset,
        (Some(Fault::InternalError), _) => error(500, "Internal Server Error"),
        (Some(Fault::BadGatewayHtml), _) => Reply::Answer {
            status: 502,
            body: "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>\
                   </center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n"
                .into(),
            content_type: "text/html",
            retry_after: None,
        },
        (Some(Fault::Forbidden), _) => error(403, "Forbidden: bot was blocked by the user"),
        (Some(Fault::TooManyRequests(secs)), _) => too_many_requests(*secs),
        (Some(Fault::CantParseEntities), _) => {
            error(400, "Bad Request: can't parse entities: Unsupported start tag \"x\" at byte offset 0")
        }
        (Some(Fault::MigrateTo(to)), _) => migrated(*to),
        (Some(Fault::ApiError(status, description)), _) => error(*status, description),
        (_, None) => error(404, "Not Found"),
        (_, Some((token, _))) if token != shared.world().token => error(401, "Unauthorized"),
        (_, Some((_, method))) => match method.to_ascii_lowercase().as_str() {
            "getme" => ok(json!({
                "id": shared.world().token.split(':').next().and_then(|id| id.parse::<i64>().ok()).unwrap_or(1),
                "is_bot": true,
                "first_name": "Mock Alerts",
                "username": "mock_alerts_bot",
                "can_join_groups": true,
                "can_read_all_group_messages": false,
                "supports_inline_queries": false
            })),
            "sendmessage" => {
                let reply = send_message(n, &params, shared, fault == Some(Fault::RecordThenHang));
                match &fault {
                    Some(f) => reply.spoiled(f),
                    None => reply,
                }
            }
            _ => error(404, "Not Found"),
        },
    };
    let status = match &reply {
        Reply::Answer { status, .. } | Reply::Raw { status, .. } => Some(*status),
        Reply::Hang | Reply::Reset => None,
    };
    let mut world = shared.world();
    if let Some(r) = world.requests.iter_mut().find(|r| r.n == n) {
        r.status = status;
    }
    shared.changed.notify_all();
    reply
}

impl World {
    /// A `chat_id` as sent (`123`, `"-100…"`, `"@name"`) to a known chat's id.
    fn resolve(&self, chat: &str) -> Option<i64> {
        let id = match chat.strip_prefix('@') {
            Some(_) => *self.usernames.get(&chat.to_ascii_lowercase())?,
            None => chat.trim().parse().ok()?,
        };
        self.chats.contains_key(&id).then_some(id)
    }
}

/// `sendMessage` (request number `n`), validated in Telegram's order.
fn send_message(n: u64, params: &HashMap<String, Value>, shared: &Shared, then_hang: bool) -> Reply {
    let string = |k: &str| match params.get(k) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    };
    let flag = |k: &str| match params.get(k) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true" || s == "1",
        _ => false,
    };
    let Some(chat) = string("chat_id") else { return error(400, "Bad Request: chat_id is empty") };
    let text = string("text").unwrap_or_default();
    if text.trim().is_empty() {
        return error(400, "Bad Request: message text is empty");
    }
    let parse_mode = string("parse_mode").filter(|p| !p.is_empty());
    let visible = match parse_mode.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => text.clone(),
        Some("html") => match parse_html(&text) {
            Ok(v) => v,
            Err(why) => return error(400, &format!("Bad Request: can't parse entities: {why}")),
        },
        Some(other) => return error(400, &format!("Bad Request: unsupported parse_mode \"{other}\"")),
    };
    if visible.trim().is_empty() {
        return error(400, "Bad Request: message text is empty");
    }
    if visible.encode_utf16().count() > 4096 {
        return error(400, "Bad Request: message is too long");
    }
    let link_preview_disabled = match params.get("link_preview_options") {
        Some(Value::Object(o)) => o.get("is_disabled") == Some(&Value::Bool(true)),
        Some(Value::String(s)) => {
            serde_json::from_str::<Value>(s).is_ok_and(|v| v.get("is_disabled") == Some(&Value::Bool(true)))
        }
        _ => flag("disable_web_page_preview"),
    };
    let message_thread_id = string("message_thread_id").and_then(|t| t.parse().ok());

    let mut world = shared.world();
    let Some(chat_id) = world.resolve(&chat) else { return error(400, "Bad Request: chat not found") };
    let kind = match world.chats[&chat_id] {
        ChatState::Blocked => return error(403, "Forbidden: bot was blocked by the user"),
        ChatState::MigratedTo(to) => return migrated(to),
        ChatState::Open { kind } => kind,
    };
    let now = Instant::now();
    if let (Some(interval), Some(last)) = (world.flood_interval, world.last_accepted.get(&chat_id)) {
        let since = now.duration_since(*last);
        if since < interval {
            let wait = (interval - since).as_secs_f64().ceil().max(1.0) as u64;
            return too_many_requests(wait);
        }
    }
    world.last_accepted.insert(chat_id, now);
    world.messages.push(Delivered {
        chat_id,
        text: text.clone(),
        parse_mode,
        disable_notification: flag("disable_notification"),
        message_thread_id,
        link_preview_disabled,
        at: now,
    });
    let message_id = world.messages.len();
    // Record the answer with the message, so a waiter never sees one without the other.
    if let Some(r) = world.requests.iter_mut().find(|r| r.n == n) {
        r.status = (!then_hang).then_some(200);
    }
    shared.changed.notify_all();
    drop(world);
    if then_hang {
        return Reply::Hang;
    }
    let date = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    ok(json!({
        "message_id": message_id,
        "from": {"id": 1, "is_bot": true, "first_name": "Mock Alerts", "username": "mock_alerts_bot"},
        "chat": {"id": chat_id, "type": kind},
        "date": date,
        "text": visible
    }))
}

/// Query, then body (JSON object or form-urlencoded) parameters.
fn parameters(request: &HttpRequest) -> HashMap<String, Value> {
    let mut params = HashMap::new();
    if let Some((_, query)) = request.target.split_once('?') {
        params.extend(form_decode(query));
    }
    let content_type = request.header("content-type").unwrap_or("").to_ascii_lowercase();
    let body = String::from_utf8_lossy(&request.body);
    if content_type.starts_with("application/json") {
        if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(&body) {
            params.extend(o);
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        params.extend(form_decode(&body));
    }
    params
}

fn form_decode(s: &str) -> Vec<(String, Value)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), Value::String(percent_decode(v)))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Telegram's HTML subset, parsed to the visible text, or Telegram's
/// complaint. Supported: b, strong, i, em, u, ins, s, strike, del, span
/// (class="tg-spoiler"), tg-spoiler, a (href), code, pre, blockquote,
/// tg-emoji; entities &lt; &gt; &amp; &quot; and numeric ones.
pub fn parse_html(text: &str) -> Result<String, String> {
    const TAGS: [&str; 16] = [
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
    ];
    let mut visible = String::with_capacity(text.len());
    let mut open: Vec<(String, usize)> = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let c = rest.chars().next().unwrap_or('\0');
        match c {
            '<' => {
                // Like tdlib: the tag name is letters, digits and '-' right after '<' (or '</').
                let closing = rest[1..].starts_with('/');
                let name_start = if closing { 2 } else { 1 };
                let name_len = rest[name_start..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                    .unwrap_or(rest.len() - name_start);
                let name = rest[name_start..name_start + name_len].to_ascii_lowercase();
                if !closing && !TAGS.contains(&name.as_str()) {
                    return Err(format!("Unsupported start tag \"{name}\" at byte offset {i}"));
                }
                let Some(end) = rest.find('>') else { return Err(format!("Unclosed start tag at byte offset {i}")) };
                if closing {
                    match open.pop() {
                        None => return Err(format!("Unexpected end tag at byte offset {i}")),
                        Some((top, _)) if top != name => {
                            return Err(format!(
                                "Unmatched end tag at byte offset {i}, expected \"</{top}>\", found \"</{name}>\""
                            ));
                        }
                        Some(_) => {}
                    }
                } else {
                    if name == "a" && !rest[..end].contains("href=") {
                        return Err(format!("Tag \"a\" must have attribute \"href\" at byte offset {i}"));
                    }
                    open.push((name, i));
                }
                i += end + 1;
            }
            '&' => {
                let entity = rest[1..].find(';').filter(|&e| e > 0 && e <= 10).map(|e| &rest[1..=e]);
                let decoded = entity.and_then(|e| match e {
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "amp" => Some('&'),
                    "quot" => Some('"'),
                    _ => e
                        .strip_prefix("#x")
                        .or_else(|| e.strip_prefix("#X"))
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                        .or_else(|| e.strip_prefix('#').and_then(|d| d.parse().ok()))
                        .and_then(char::from_u32),
                });
                match (entity, decoded) {
                    (Some(e), Some(ch)) => {
                        visible.push(ch);
                        i += e.len() + 2;
                    }
                    _ => return Err(format!("Character entity expected at byte offset {i}")),
                }
            }
            c => {
                visible.push(c);
                i += c.len_utf8();
            }
        }
    }
    match open.last() {
        Some((name, _)) => Err(format!("Can't find end tag corresponding to start tag \"{name}\"")),
        None => Ok(visible),
    }
}
