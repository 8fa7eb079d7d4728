//! Papercuts a new user meets, on the real binary's output: config errors
//! name their key and show the offending line with a caret, the README's
//! error examples are exactly what the binary prints, and a `ws_url` with
//! the wrong path is reported with the server's HTTP status and the fix.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::live::scratch;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_imbalance-monitor"));
    c.env_remove("TELEGRAM_BOT_TOKEN").env_remove("TELEGRAM_CHAT_ID").env_remove("IMBALANCE_THRESHOLD");
    c
}

fn check_config(dir: &Path, body: &str) -> Output {
    std::fs::write(dir.join("bad.toml"), body).unwrap();
    bin().current_dir(dir).args(["check-config", "-c", "bad.toml"]).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The README's pairs of a `# bad.toml` block and the console block after it.
fn readme_examples() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let mut out = Vec::new();
    let mut rest = readme.as_str();
    while let Some(i) = rest.find("```toml\n# bad.toml\n") {
        let body_start = i + "```toml\n".len();
        let body_end = body_start + rest[body_start..].find("```\n").unwrap();
        let body = rest[body_start..body_end].to_string();
        let console = "```console\n$ imbalance-monitor check-config -c bad.toml\n";
        let c = body_end + rest[body_end..].find(console).expect("the output after the config");
        let out_start = c + console.len();
        let out_end = out_start + rest[out_start..].find("```\n").unwrap();
        out.push((body, rest[out_start..out_end].to_string()));
        rest = &rest[out_end..];
    }
    out
}

#[test]
fn the_readmes_config_errors_are_what_the_binary_prints() {
    let dir = scratch("first-run-readme");
    let examples = readme_examples();
    assert!(examples.len() >= 3, "the README shows its config error examples");
    for (body, shown) in examples {
        let o = check_config(&dir, &body);
        assert_eq!(o.status.code(), Some(2), "{body}");
        assert_eq!(stderr(&o), shown, "for\n{body}");
    }
}

#[test]
fn an_unknown_enum_value_names_its_key_and_the_choices() {
    let dir = scratch("first-run-enum");
    let cases = [
        (
            "[[triggers]]\nname = \"a\"\nop = \">\"\nvalue = 0.1\nemit = \"once\"\n",
            "bad.toml:5: `triggers[0].emit` is \"once\"; expected edge or level\n 5 | emit = \"once\"\n   |        ^^^^^^\n",
        ),
        (
            "[metrics]\nvolume_mode = \"base\"\n",
            "bad.toml:2: `metrics.volume_mode` is \"base\"; expected qty or notional\n 2 | volume_mode = \"base\"\n",
        ),
        (
            "[[triggers]]\nname = \"a\"\nop = \">\"\nvalue = 0.1\n[[triggers]]\nname = \"b\"\nmetric = \"imbalance\"\nop = \"<\"\nvalue = -0.1\n",
            "bad.toml:7: `triggers[1].metric` is \"imbalance\"; expected one of ",
        ),
        (
            "[metrics]\ntop_n = \"five\"\n",
            "bad.toml:2: `metrics.top_n` is string \"five\"; expected u32\n 2 | top_n = \"five\"\n   |         ^^^^^^\n",
        ),
    ];
    for (body, want) in cases {
        let o = check_config(&dir, body);
        assert_eq!(o.status.code(), Some(2), "{body}");
        assert!(stderr(&o).starts_with(&format!("error: {want}")), "{body}\ngot:\n{}", stderr(&o));
    }
}

#[test]
fn a_toml_syntax_error_shows_the_line_with_a_caret_at_the_problem() {
    let dir = scratch("first-run-syntax");
    let o = check_config(&dir, "pairs = [\"BTCUSDT\"]\n[binance]\nws_url = \"wss://stream.binance.com:9443/stream\n");
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines[0].starts_with("error: bad.toml:3: "), "{err}");
    assert_eq!(lines[1], " 3 | ws_url = \"wss://stream.binance.com:9443/stream");
    let caret = lines[2].find('^').unwrap();
    assert!(lines[2].starts_with("   | ") && caret >= "   | ws_url = ".len(), "{err}");
}
