//! Live requests a client sends on an open connection (`SUBSCRIBE`,
//! `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`) and
//! Binance's replies to them, errors included, so a client's request handling
//! is tested against the shapes the exchange really sends.

use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

use super::streams::is_valid_stream_name;

/// What a well-formed request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Subscribe(Vec<String>),
    Unsubscribe(Vec<String>),
    ListSubscriptions,
    /// `SET_PROPERTY ["combined", b]`: switch the connection's frame shape.
    SetCombined(bool),
    /// `GET_PROPERTY ["combined"]`.
    GetCombined,
}

/// A request Binance would refuse, as its `{"code":…,"msg":…}` error object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestError {
    pub code: u32,
    pub msg: String,
}

impl RequestError {
    fn invalid(msg: impl Into<String>) -> Self {
        RequestError { code: 2, msg: format!("Invalid request: {}", msg.into()) }
    }
}

/// One parsed client message: the request id to echo (raw JSON: `1`,
/// `"abc"`, or `null` when there is none to echo) and the request or why it
/// is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    pub id: String,
    pub request: Result<Request, RequestError>,
}

const METHODS: &str = "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`";

/// Parses a client text (or binary) message. Never fails: whatever the bytes,
/// the result is something to answer.
pub fn parse(message: &[u8]) -> Incoming {
    let null = || "null".to_owned();
    let value: Value = match sonic_rs::from_slice(message) {
        Ok(v) => v,
        Err(e) => {
            return Incoming { id: null(), request: Err(RequestError { code: 3, msg: format!("Invalid JSON: {e}") }) };
        }
    };
    if value.as_object().is_none() {
        return Incoming { id: null(), request: Err(RequestError::invalid("expected a JSON object")) };
    }
    let id = match value.get("id") {
        None => return Incoming { id: null(), request: Err(RequestError::invalid("missing field `id`")) },
        Some(id) => match echo_id(id) {
            Some(id) => id,
            None => {
                let e = RequestError::invalid("request ID must be an unsigned integer");
                return Incoming { id: null(), request: Err(e) };
            }
        },
    };
    let request = request_of(&value);
    Incoming { id, request }
}

/// The id as raw JSON to echo: an unsigned integer or a short string.
fn echo_id(id: &Value) -> Option<String> {
    if let Some(n) = id.as_u64() {
        return Some(n.to_string());
    }
    let s = id.as_str().filter(|s| s.len() <= 36)?;
    sonic_rs::to_string(s).ok()
}

fn request_of(value: &Value) -> Result<Request, RequestError> {
    let method = match value.get("method") {
        None => return Err(RequestError::invalid("missing field `method`")),
        Some(m) => m.as_str().ok_or_else(|| RequestError::invalid("method must be a string"))?,
    };
    let params = value.get("params");
    match method {
        "SUBSCRIBE" => stream_list(params).map(Request::Subscribe),
        "UNSUBSCRIBE" => stream_list(params).map(Request::Unsubscribe),
        "LIST_SUBSCRIPTIONS" => Ok(Request::ListSubscriptions),
        "SET_PROPERTY" => {
            let params = params.and_then(|p| p.as_array()).map(|a| a.as_ref()).unwrap_or(&[]);
            if params.len() > 2 {
                return Err(RequestError::invalid("too many parameters"));
            }
            property(params.first())?;
            let flag = params.get(1).and_then(|v| v.as_bool());
            flag.map(Request::SetCombined)
                .ok_or_else(|| RequestError { code: 1, msg: "Invalid value type: expected Boolean".into() })
        }
        "GET_PROPERTY" => {
            let params = params.and_then(|p| p.as_array()).map(|a| a.as_ref()).unwrap_or(&[]);
            if params.len() > 1 {
                return Err(RequestError::invalid("too many parameters"));
            }
            property(params.first()).map(|()| Request::GetCombined)
        }
        other => Err(RequestError::invalid(format!("unknown variant `{other}`, expected one of {METHODS}"))),
    }
}

/// The only property Binance knows is `combined`.
fn property(name: Option<&Value>) -> Result<(), RequestError> {
    match name.and_then(|n| n.as_str()) {
        None => Err(RequestError::invalid("property name must be a string")),
        Some("combined") => Ok(()),
        Some(_) => Err(RequestError { code: 0, msg: "Unknown property".into() }),
    }
}

fn stream_list(params: Option<&Value>) -> Result<Vec<String>, RequestError> {
    let Some(params) = params else {
        return Err(RequestError::invalid("missing field `params`"));
    };
    let items = params.as_array().ok_or_else(|| RequestError::invalid("params must be an array of stream names"))?;
    items
        .iter()
        .map(|item| match item.as_str() {
            Some(name) if is_valid_stream_name(name) => Ok(name.to_owned()),
            Some(name) => Err(RequestError::invalid(format!("invalid stream name `{name}`"))),
            None => Err(RequestError::invalid("params must be an array of stream names")),
        })
        .collect()
}

/// `{"result":<result>,"id":<id>}`; `result` is raw JSON.
pub fn reply_result(id: &str, result: &str) -> String {
    format!("{{\"result\":{result},\"id\":{id}}}")
}

/// `{"error":{"code":<code>,"msg":"<msg>"},"id":<id>}`.
pub fn reply_error(id: &str, error: &RequestError) -> String {
    let msg = sonic_rs::to_string(&error.msg).unwrap_or_else(|_| "\"\"".to_owned());
    format!("{{\"error\":{{\"code\":{},\"msg\":{msg}}},\"id\":{id}}}", error.code)
}

/// A JSON array of stream names, for `LIST_SUBSCRIPTIONS`.
pub fn name_list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    sonic_rs::to_string(&names.collect::<Vec<_>>()).unwrap_or_else(|_| "[]".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(s: &str) -> Incoming {
        parse(s.as_bytes())
    }

    #[test]
    fn binance_doc_requests_parse() {
        assert_eq!(
            parsed(r#"{"method":"SUBSCRIBE","params":["btcusdt@aggTrade","btcusdt@depth"],"id":1}"#),
            Incoming {
                id: "1".into(),
                request: Ok(Request::Subscribe(vec!["btcusdt@aggTrade".into(), "btcusdt@depth".into()]))
            }
        );
        assert_eq!(parsed(r#"{"method":"LIST_SUBSCRIPTIONS","id":3}"#).request, Ok(Request::ListSubscriptions));
        assert_eq!(
            parsed(r#"{"method":"SET_PROPERTY","params":["combined",true],"id":5}"#).request,
            Ok(Request::SetCombined(true))
        );
        assert_eq!(
            parsed(r#"{"method":"GET_PROPERTY","params":["combined"],"id":2}"#).request,
            Ok(Request::GetCombined)
        );
        assert_eq!(parsed(r#"{"method":"LIST_SUBSCRIPTIONS","id":"req-7"}"#).id, "\"req-7\"");
    }

    #[test]
    fn bad_requests_get_binance_error_codes() {
        let code = |s: &str| parsed(s).request.unwrap_err().code;
        assert_eq!(code("{not json"), 3);
        assert_eq!(code(r#"{"method":"PUBLISH","params":[],"id":1}"#), 2);
        assert_eq!(code(r#"{"params":[],"id":1}"#), 2);
        assert_eq!(code(r#"{"method":"SUBSCRIBE","params":"btcusdt@depth","id":1}"#), 2);
        assert_eq!(code(r#"{"method":"SUBSCRIBE","params":["no spaces allowed"],"id":1}"#), 2);
        assert_eq!(code(r#"{"method":"SUBSCRIBE","params":[],"id":-1}"#), 2);
        assert_eq!(code(r#"{"method":"SET_PROPERTY","params":["speed",true],"id":1}"#), 0);
        assert_eq!(code(r#"{"method":"SET_PROPERTY","params":["combined","yes"],"id":1}"#), 1);
        assert_eq!(parsed(r#"{"method":"SUBSCRIBE","params":[],"id":-1}"#).id, "null");
    }

    #[test]
    fn replies_have_binance_shape() {
        assert_eq!(reply_result("1", "null"), r#"{"result":null,"id":1}"#);
        assert_eq!(
            reply_result("3", &name_list(["btcusdt@depth10@100ms"].into_iter())),
            r#"{"result":["btcusdt@depth10@100ms"],"id":3}"#
        );
        let e = RequestError { code: 2, msg: "Invalid request: \"quoted\"".into() };
        assert_eq!(reply_error("null", &e), r#"{"error":{"code":2,"msg":"Invalid request: \"quoted\""},"id":null}"#);
    }
}
