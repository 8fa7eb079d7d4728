//! A real PostgreSQL server for one test: `initdb` and `pg_ctl` in a fresh
//! temporary directory, listening on 127.0.0.1 at a free port, with trust
//! authentication. `initdb` refuses to run as root, so as root (CI) the
//! server runs as the `postgres` user the Debian package creates.
//!
//! Without the server binaries, [`PgServer::start`] returns `None` after
//! printing a loud SKIPPED line; `.ci/run` installs them so CI never skips.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A running server, stopped when dropped.
pub struct PgServer {
    dir: PathBuf,
    bindir: PathBuf,
    pub port: u16,
    as_postgres: bool,
}

/// Where `initdb`/`pg_ctl` live: `$PG_BINDIR`, the newest
/// `/usr/lib/postgresql/*/bin`, or the `PATH`.
fn bindir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BINDIR") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(PathBuf::from).find(|d| d.join("initdb").is_file())
}

impl PgServer {
    /// Starts a server, or says loudly why the test is skipped.
    pub fn start(name: &str) -> Option<PgServer> {
        let Some(bindir) = bindir() else {
            eprintln!(
                "\n*** SKIPPED {name}: no PostgreSQL server binaries (initdb, pg_ctl) found; \
                 install the `postgresql` package (.ci/run does) or set PG_BINDIR ***\n"
            );
            return None;
        };
        // SAFETY: geteuid has no preconditions and cannot fail.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        let dir = std::env::temp_dir().join(format!("im-pg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        if as_postgres {
            let ok = Command::new("chown").arg("postgres").arg(&dir).status().unwrap().success();
            assert!(ok, "chown postgres {}", dir.display());
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let server = PgServer { dir, bindir, port, as_postgres };
        let data = server.data();
        server.run("initdb", &["-D", data.to_str().unwrap(), "-A", "trust", "-U", "postgres", "--no-sync"]);
        server.pg_ctl_start();
        Some(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `postgresql://postgres@127.0.0.1:PORT/postgres`
    pub fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `tool` from the server's bindir, as the `postgres` user when we are root.
    fn command(&self, tool: &str) -> Command {
        let exe = self.bindir.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self.command(tool).args(args).current_dir(&self.dir).output().unwrap();
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
        );
    }

    /// Starts the server and waits until it accepts connections.
    pub fn pg_ctl_start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off",
            self.port,
            self.dir.display()
        );
        let data = self.data();
        let log = self.dir.join("server.log");
        self.run("pg_ctl", &["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-o", &opts, "-w", "start"]);
    }

    /// Stops the server (fast shutdown: connections are cut).
    pub fn pg_ctl_stop(&self) {
        let data = self.data();
        self.run("pg_ctl", &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"]);
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.data();
        let _ =
            self.command("pg_ctl").args(["-D", data.to_str().unwrap_or_default(), "-m", "immediate", "stop"]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
