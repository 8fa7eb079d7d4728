//! Starting, observing and stopping a simulator, and the CLI's `run`.

use std::fs;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::Sender;
use mio::net::TcpListener;
use mio::{Interest, Poll, Waker};

use super::connection::ConnConfig;
use super::error::SimError;
use super::faults::FaultPlan;
use super::market::{Market, Source};
use super::options::{Rate, SimOptions};
use super::recorded::Recorded;
use super::rest::{RequestLog, RestFaults, RestRequest, RestSide};
use super::server::{Command, LISTENER, Server, ServerParts, WAKER};
use super::stats::SimStats;
use super::streams::StreamNames;
use super::synthetic::Synthetic;
use super::tls::TlsIdentity;
use crate::recording::RecordingReader;

/// Market batches in flight between the market and network threads: enough
/// to ride out a busy loop iteration, few enough that `Rate::Max` feels the
/// sockets' backpressure at once.
const BATCHES_IN_FLIGHT: usize = 8;
/// Client queue at `Rate::Max`, where a full queue is the normal state and
/// only holds the market back.
const MAX_RATE_QUEUE: usize = 4096;
/// How often `run` looks at its stop flag.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// The Binance feed simulator. See the [module docs](super).
pub struct Simulator;

impl Simulator {
    /// Binds, spawns the market and network threads and returns at once: the
    /// socket is listening when this returns, so a client may connect
    /// immediately. Fails before anything runs on bad options, an unusable
    /// address, an unopenable recording, or a TLS set-up error.
    pub fn start(opts: SimOptions) -> Result<RunningSimulator, SimError> {
        opts.validate()?;
        let readers = opts.replay.iter().map(|p| RecordingReader::open(p)).collect::<Result<Vec<_>, _>>()?;
        let bind_err = |source| SimError::Bind { addr: opts.listen, source };
        let mut listener = TcpListener::bind(opts.listen).map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let tls = if opts.tls { Some(TlsIdentity::generate(opts.ca_out.as_deref())?) } else { None };

        let poll = Poll::new().map_err(SimError::EventLoop)?;
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE).map_err(SimError::EventLoop)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(SimError::EventLoop)?);

        let names = StreamNames::default();
        let (ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
        let (event_tx, event_rx) = crossbeam_channel::bounded(BATCHES_IN_FLIGHT);
        let (command_tx, command_rx) = crossbeam_channel::unbounded();
        let published = Arc::new(Mutex::new(SimStats::default()));
        let request_log = RequestLog::new(opts.request_log.as_deref())?;
        let rest = RestSide::new(
            RestFaults {
                status: opts.snapshot_status,
                retry_after: opts.retry_after,
                delay: opts.snapshot_delay,
                down: opts.rest_down,
            },
            ctl_tx.clone(),
            request_log.clone(),
        );

        let source: Box<dyn Source> = if opts.synthetic {
            Box::new(Synthetic::new(opts.seed, names.clone()))
        } else {
            Box::new(Recorded::new(readers, opts.looped, opts.interleave, names.clone()))
        };
        let market = Market::new(source, opts.rate, opts.wait_for_subscribers, ctl_rx, event_tx, Arc::clone(&waker));
        let max_rate = opts.rate == Rate::Max;
        let queue_cap = if max_rate { opts.client_queue_frames.min(MAX_RATE_QUEUE) } else { opts.client_queue_frames };
        let parts = ServerParts {
            poll,
            listener,
            tls: tls.as_ref().map(|t| Arc::clone(&t.config)),
            cfg: ConnConfig {
                ping_interval: opts.ping_interval,
                pong_timeout: opts.pong_timeout,
                shutdown_grace: opts.shutdown_grace,
                faults: FaultPlan {
                    drop_after: opts.drop_after,
                    shutdown_after: opts.shutdown_after,
                    garbage_every: opts.garbage_every,
                    stall_after: opts.stall_after,
                },
                gap_every: opts.gap_every,
                queue_cap: queue_cap.max(1),
            },
            max_rate,
            names,
            market_ctl: ctl_tx,
            market: event_rx,
            rest,
            commands: command_rx,
            published: Arc::clone(&published),
        };

        let spawn_err = |thread| move |source| SimError::Thread { thread, source };
        let market = thread::Builder::new()
            .name("sim-market".into())
            .spawn(move || market.run())
            .map_err(spawn_err("market"))?;
        let network = thread::Builder::new()
            .name("sim-network".into())
            .spawn(move || Server::new(parts).run())
            .map_err(spawn_err("network"))?;

        let (ca_path, temp_dir) = match tls {
            Some(t) => (Some(t.ca_path), t.temp_dir),
            None => (None, None),
        };
        Ok(RunningSimulator {
            addr,
            ca_path,
            temp_dir,
            commands: command_tx,
            waker,
            network: Some(network),
            market: Some(market),
            published,
            request_log,
        })
    }
}

/// A started simulator. Stopping it (with [`stop`](Self::stop) or by
/// dropping it) closes every client and joins its threads.
pub struct RunningSimulator {
    addr: SocketAddr,
    ca_path: Option<PathBuf>,
    temp_dir: Option<PathBuf>,
    commands: Sender<Command>,
    waker: Arc<Waker>,
    network: Option<JoinHandle<Result<SimStats, SimError>>>,
    market: Option<JoinHandle<()>>,
    published: Arc<Mutex<SimStats>>,
    request_log: RequestLog,
}

impl RunningSimulator {
    /// The bound address (the real port when asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The combined-stream endpoint, `ws://127.0.0.1:PORT/stream` or
    /// `wss://…/stream`: the value a client puts in `binance.ws_url`.
    pub fn url(&self) -> String {
        let scheme = if self.ca_path.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}/stream", self.addr)
    }

    /// The REST base URL on the same port, `http://127.0.0.1:PORT` or
    /// `https://…`: the value a client puts in `binance.rest_url`.
    pub fn rest_url(&self) -> String {
        let scheme = if self.ca_path.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Every REST request answered (or closed unanswered) so far, in answer
    /// order, with its receive time and status: what a test asserts a
    /// client's request pacing on. Still readable after the simulator stopped.
    pub fn requests(&self) -> Vec<RestRequest> {
        self.request_log.entries()
    }

    /// The CA certificate (PEM) a `wss` client must trust; `None` for `ws`.
    pub fn ca_path(&self) -> Option<&Path> {
        self.ca_path.as_deref()
    }

    /// The line `run` prints first, for whoever started the process to read.
    pub fn listening_line(&self) -> String {
        listening_line(self.addr, self.ca_path())
    }

    /// A consistent snapshot of the counters. After the simulator has
    /// stopped (or failed), the last snapshot it left.
    pub fn stats(&self) -> SimStats {
        let (reply_tx, reply_rx) = crossbeam_channel::bounded(1);
        if self.commands.send(Command::Stats(reply_tx)).is_ok()
            && self.waker.wake().is_ok()
            && let Ok(stats) = reply_rx.recv()
        {
            return stats;
        }
        self.published.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Closes every client, stops both threads and returns the final stats.
    pub fn stop(mut self) -> SimStats {
        match self.shutdown() {
            Ok(stats) => stats,
            Err(e) => {
                log::error!("simulator: {e}");
                self.published.lock().unwrap_or_else(PoisonError::into_inner).clone()
            }
        }
    }

    /// True once the network thread has ended (it only ends on its own on a
    /// fatal error).
    fn network_ended(&self) -> bool {
        self.network.as_ref().is_none_or(JoinHandle::is_finished)
    }

    fn shutdown(&mut self) -> Result<SimStats, SimError> {
        let _ = self.commands.send(Command::Stop);
        let _ = self.waker.wake();
        let result = match self.network.take() {
            Some(handle) => handle.join().unwrap_or(Err(SimError::Panicked { thread: "network" })),
            None => Ok(self.published.lock().unwrap_or_else(PoisonError::into_inner).clone()),
        };
        // The market ends once the network thread has dropped its channels.
        if let Some(handle) = self.market.take()
            && handle.join().is_err()
        {
            log::error!("simulator: the market thread panicked");
        }
        if let Some(dir) = self.temp_dir.take()
            && let Err(e) = fs::remove_dir_all(&dir)
        {
            log::warn!("simulator: cannot remove {}: {e}", dir.display());
        }
        result
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        if self.network.is_some()
            && let Err(e) = self.shutdown()
        {
            log::error!("simulator: {e}");
        }
    }
}

/// The machine-readable first line `run` prints:
/// `listening ws://127.0.0.1:PORT`, or with TLS
/// `listening wss://127.0.0.1:PORT ca=/path/to/ca.pem`.
pub fn listening_line(addr: SocketAddr, ca_path: Option<&Path>) -> String {
    match ca_path {
        None => format!("listening ws://{addr}"),
        Some(ca) => format!("listening wss://{addr} ca={}", ca.display()),
    }
}

/// The `simulate` command: starts the simulator, prints
/// [`listening_line`] as the first stdout line (flushed, so a parent process
/// can read the port and CA at once), then serves until SIGINT or SIGTERM and
/// stops cleanly. A second signal while stopping exits at once.
pub fn run(opts: SimOptions) -> Result<(), SimError> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop)).map_err(SimError::Signals)?;
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(SimError::Signals)?;
    }
    let mut sim = Simulator::start(opts)?;
    let mut out = io::stdout().lock();
    writeln!(out, "{}", sim.listening_line()).and_then(|()| out.flush()).map_err(SimError::Stdout)?;
    drop(out);
    eprintln!("simulator: serving {} until SIGINT/SIGTERM", sim.url());
    while !stop.load(Ordering::Relaxed) && !sim.network_ended() {
        thread::sleep(SIGNAL_POLL);
    }
    let stats = sim.shutdown()?;
    eprintln!(
        "simulator: stopped; {} connections, {} data frames sent, {} market frames{}",
        stats.connections_accepted,
        stats.data_frames_total(),
        stats.market_frames,
        if stats.recording_finished { ", recording finished" } else { "" }
    );
    Ok(())
}
