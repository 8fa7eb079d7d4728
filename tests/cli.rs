//! The command line as an operator meets it: the real binary, real files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BTC10: &str = "tests/fixtures/btcusdt_depth10_100ms_20240808-09.txt.gz";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_imbalance-monitor"));
    // The tests' own environment must not leak in.
    for var in ["IMBALANCE_MONITOR_CONFIG", "TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_ID", "IMBALANCE_THRESHOLD"] {
        c.env_remove(var);
    }
    c
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("im-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn check_config(cfg: &Path) -> Output {
    bin().arg("check-config").arg("-c").arg(cfg).output().unwrap()
}

#[test]
fn every_config_error_class_names_the_file_line_key_and_exits_2() {
    let dir = scratch("errors");
    let cases = [
        ("pairs = [\"BTC/USDT\"]\n", "bad.toml:1: `pairs[0]` is \"BTC/USDT\", not a Binance symbol"),
        (
            "[[triggers]]\nname='a'\nop='>'\nvalue=0.1\n[[triggers]]\nname='a'\nop='<'\nvalue=-0.1\n",
            "bad.toml:6: `triggers[1].name` \"a\" is also the name of triggers[0]",
        ),
        (
            "[binance]\ndepth = 10\n[metrics]\ntop_n = 15\n",
            "bad.toml:4: `metrics.top_n` is 15; it must be between 1 and binance.depth (10)",
        ),
        (
            "[[triggers]]\nname='a'\nop='>'\nvalue=1.5\n",
            "bad.toml:4: `triggers[0].value` is 1.5; imbalance_ratio lies in [-1, 1]",
        ),
        (
            "[[triggers]]\nname='a'\nop='=>'\nvalue=0.1\n",
            "bad.toml:3: `triggers[0].op` is \"=>\"; expected one of >, >=, <, <=\n 3 | op='=>'\n   |    ^^^^",
        ),
        ("[binance]\ndepth = 7\n", "bad.toml:2: `binance.depth` is 7; Binance offers 5, 10 or 20"),
        ("[binance]\nws_url = \"http://x\"\n", "`binance.ws_url` is \"http://x\"; expected a ws:// or wss:// URL"),
        ("[metrics]\nvolume = 'qty'\n", "unknown field `volume`"),
        ("[telegram]\nenabled = true\n", "`telegram.bot_token` is not set but Telegram is enabled"),
        ("threshold = 2\n", "bad.toml:1: `threshold` is 2; use a ratio in (0, 1]"),
        ("[metrics_http]\nlisten = 'localhost'\n", "`metrics_http.listen` is \"localhost\"; use IP:PORT"),
        ("pairs = [\n", "bad.toml:"),
        (
            "[telegram]\nmax_retry_after_sec = 18446744073709551615\n",
            "bad.toml:2: `telegram.max_retry_after_sec` is 18446744073709551615; use 1 to 3600 seconds",
        ),
        ("[log]\nkeep_files = 0\n", "bad.toml:2: `log.keep_files` is 0; keep 1 to 100000 rotated files"),
        ("[log]\nmax_size_mb = 4194304\n", "bad.toml:2: `log.max_size_mb` is 4194304; use 1 to 1048576 MiB"),
    ];
    for (body, want) in cases {
        let cfg = write(&dir, "bad.toml", body);
        let out = check_config(&cfg);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{body:?}\n{stdout}{stderr}");
        assert!(stderr.contains(want), "{body:?}: expected {want:?} in\n{stderr}");
        assert!(stdout.is_empty(), "nothing printed on stdout for a bad config: {stdout}");
    }
    let missing = check_config(&dir.join("nope.toml"));
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing).1.contains("nope.toml: cannot read the config file"));
}

#[test]
fn a_bad_config_stops_run_before_it_connects_or_writes() {
    let dir = scratch("run-bad");
    let journal = dir.join("alerts.jsonl");
    let cfg = write(&dir, "c.toml", &format!("[binance]\ndepth = 7\n[alerts]\njournal = {:?}\n", journal));
    let out = bin().arg("run").arg("-c").arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!journal.exists() && !dir.join("logs").exists());
}

#[test]
fn check_config_prints_the_effective_config_with_secrets_redacted() {
    let dir = scratch("effective");
    let cfg = write(
        &dir,
        "c.toml",
        "pairs=['btcusdt']\n[telegram]\nenabled=true\nbot_token='123456789:AAEsecretsecretsecretsecretsecret12'\nchat_ids=[42]\n",
    );
    let out = check_config(&cfg);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("pairs = [\"BTCUSDT\"]"), "{stdout}");
    assert!(stdout.contains("stale_after_ms = 5000"), "{stdout}");
    assert!(stdout.contains("bot_token = \"<redacted>\""), "{stdout}");
    assert!(!stdout.contains("AAEsecret") && !stderr.contains("AAEsecret"));
    assert!(stdout.contains("# OK: 1 pair(s)"), "{stdout}");
}

#[test]
fn the_shorthand_and_overrides_produce_the_expected_triggers() {
    let dir = scratch("shorthand");
    let cfg = write(
        &dir,
        "c.toml",
        "pairs = ['BTCUSDT', 'ETHUSDT']\nthreshold = 0.25\ncooldown_sec = 0\n[pair_overrides.ETHUSDT]\nthreshold = 0.9\n",
    );
    let (stdout, _) = text(&check_config(&cfg));
    let triggers: Vec<&str> = stdout.split("[[triggers]]").skip(1).collect();
    assert_eq!(triggers.len(), 4, "{stdout}");
    assert!(
        triggers[0].contains("name = \"imbalance_buy\"")
            && triggers[0].contains("op = \">=\"")
            && triggers[0].contains("value = 0.25")
            && triggers[0].contains("pairs = [\"BTCUSDT\"]")
    );
    assert!(
        triggers[1].contains("name = \"imbalance_buy\"")
            && triggers[1].contains("value = 0.9")
            && triggers[1].contains("pairs = [\"ETHUSDT\"]")
    );
    assert!(
        triggers[2].contains("name = \"imbalance_sell\"")
            && triggers[2].contains("op = \"<=\"")
            && triggers[2].contains("value = -0.25")
    );
    assert!(triggers[3].contains("value = -0.9") && triggers[3].contains("pairs = [\"ETHUSDT\"]"));

    // The same config on a replay: only BTCUSDT frames are present; its
    // triggers fire, with the base threshold.
    let out =
        bin().args(["replay", "-c"]).arg(&cfg).arg("--journal").arg(dir.join("j.jsonl")).arg(BTC10).output().unwrap();
    let (stdout, _) = text(&out);
    assert!(stdout.contains("TRIGGER | pair=BTCUSDT | imbalance_buy: imbalance_ratio >= 0.25"), "{stdout}");
    assert!(stdout.contains("TRIGGER | pair=BTCUSDT | imbalance_sell: imbalance_ratio <= -0.25"), "{stdout}");
}

#[test]
fn environment_beats_dotenv_and_dotenv_beats_the_file() {
    let dir = scratch("env");
    let cfg = write(&dir, "c.toml", "pairs=['BTCUSDT']\nthreshold = 0.3\n");
    let value_of_buy = |out: &Output| -> String {
        let (stdout, stderr) = text(out);
        assert!(out.status.success(), "{stderr}");
        let buy = stdout.split("[[triggers]]").nth(1).unwrap();
        buy.lines().find(|l| l.starts_with("value = ")).unwrap().to_string()
    };
    assert_eq!(value_of_buy(&check_config(&cfg)), "value = 0.3");
    write(&dir, ".env", "# local overrides\nIMBALANCE_THRESHOLD=0.4\n");
    assert_eq!(value_of_buy(&check_config(&cfg)), "value = 0.4");
    let with_env = bin().arg("check-config").arg("-c").arg(&cfg).env("IMBALANCE_THRESHOLD", "0.5").output().unwrap();
    assert_eq!(value_of_buy(&with_env), "value = 0.5");
    // IMBALANCE_MONITOR_CONFIG selects the file when -c is absent.
    let by_var = bin().arg("check-config").env("IMBALANCE_MONITOR_CONFIG", &cfg).output().unwrap();
    assert_eq!(value_of_buy(&by_var), "value = 0.4");
    // Telegram credentials from .env; the real environment wins for the chat.
    write(&dir, ".env", "TELEGRAM_BOT_TOKEN=123456789:AAEdotenvdotenvdotenvdotenvdotenv12\nTELEGRAM_CHAT_ID=111\n");
    let tg = write(&dir, "tg.toml", "pairs=['BTCUSDT']\n[telegram]\nenabled=true\n");
    let out = bin().arg("check-config").arg("-c").arg(&tg).env("TELEGRAM_CHAT_ID", "-100222,333").output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("chat_ids = [-100222, 333]"), "{stdout}");
    assert!(!stdout.contains("AAEdotenv"), "{stdout}");
    let bad = bin().arg("check-config").arg("-c").arg(&cfg).env("IMBALANCE_THRESHOLD", "lots").output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad).1.contains("IMBALANCE_THRESHOLD"));
}

#[test]
fn help_lists_every_subcommand_and_the_exit_codes() {
    let out = bin().arg("--help").output().unwrap();
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    for cmd in ["run", "replay", "simulate", "demo", "check-config", "telegram-test"] {
        assert!(stdout.lines().any(|l| l.trim_start().starts_with(cmd)), "{cmd} missing from --help:\n{stdout}");
    }
    assert!(stdout.contains("Exit codes: 0 success; 1 runtime failure; 2 usage or config error"));
    let v = bin().arg("--version").output().unwrap();
    assert!(text(&v).0.starts_with("imbalance-monitor "));
    assert_eq!(bin().arg("--no-such-flag").output().unwrap().status.code(), Some(2));
}

#[test]
fn the_systemd_unit_verifies() {
    let Ok(probe) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("SKIPPED: systemd-analyze is not installed here");
        return;
    };
    if !probe.status.success() {
        eprintln!("SKIPPED: systemd-analyze does not run here");
        return;
    }
    let dir = scratch("unit");
    let unit = std::fs::read_to_string("scripts/imbalance-monitor.service")
        .unwrap()
        .replace("/usr/local/bin/imbalance-monitor", env!("CARGO_BIN_EXE_imbalance-monitor"));
    let path = write(&dir, "imbalance-monitor.service", &unit);
    let out = Command::new("systemd-analyze").arg("verify").arg(&path).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    // Only keys newer than this systemd (restart backoff, systemd ≥ 254) may be reported.
    for line in stderr.lines().chain(stdout.lines()).filter(|l| !l.trim().is_empty()) {
        assert!(
            line.contains("Unknown key 'RestartSteps'") || line.contains("Unknown key 'RestartMaxDelaySec'"),
            "systemd-analyze: {line}"
        );
    }
}

#[test]
fn tune_host_is_a_dry_run_by_default() {
    let out = Command::new("bash").args(["scripts/tune-host.sh", "--hot-core", "0"]).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("(dry run)") && stdout.contains("nothing was changed"), "{stdout}");
    for line in stdout.lines().filter(|l| l.contains("set /")) {
        assert!(line.contains("would set"), "a dry run changed something: {line}");
    }
    let bad = Command::new("bash").args(["scripts/tune-host.sh", "--hot-core", "4096"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
