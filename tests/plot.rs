//! `imbalance-monitor plot` on the real recordings: the SVG carries one
//! marker per alert the journal of a replay holds, at its time and on its
//! side; the PNG decodes and shows a chart; bad arguments exit 2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BTC10: &str = "tests/fixtures/btcusdt_depth10_100ms_20240808-09.txt.gz";
const ETH10: &str = "tests/fixtures/ethusdt_depth10_100ms_20240808-09.txt.gz";

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_imbalance-monitor"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("im-plot-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn config(dir: &Path, pairs: &str) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "pairs = {pairs}\nthreshold = 0.6\ncooldown_sec = 10\n[alerts]\njournal = {:?}\n",
            dir.join("unused.jsonl")
        ),
    )
    .unwrap();
    path
}

fn ok(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{out}{}", String::from_utf8_lossy(&o.stderr));
    out
}

/// The journal's alerts of a replay: (recv_ns, trigger).
fn journal_alerts(cfg: &Path, dir: &Path, files: &[&str]) -> Vec<(u64, String, String)> {
    let journal = dir.join("replay.jsonl");
    ok(&bin().arg("replay").arg("-c").arg(cfg).arg("--journal").arg(&journal).args(files).output().unwrap());
    std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| {
            (v["recv_ns"].as_u64().unwrap(), v["trigger"].as_str().unwrap().into(), v["pair"].as_str().unwrap().into())
        })
        .collect()
}

/// Every alert marker in an SVG: (x, y, glyph).
fn markers(svg: &str) -> Vec<(f64, f64, char)> {
    let mut out = Vec::new();
    for chunk in svg.split("<text ").skip(1) {
        let (attrs, rest) = chunk.split_once('>').unwrap();
        let attrs = format!(" {attrs}");
        let glyph = rest.split("</text>").next().unwrap().trim();
        if glyph == "▲" || glyph == "▼" {
            let attr = |name: &str| -> f64 {
                attrs.split(&format!(" {name}=\"")).nth(1).unwrap().split('"').next().unwrap().parse().unwrap()
            };
            out.push((attr("x"), attr("y"), glyph.chars().next().unwrap()));
        }
    }
    out
}

fn plot(cfg: &Path, out: &Path, extra: &[&str], files: &[&str]) -> Output {
    bin().arg("plot").arg("-c").arg(cfg).args(files).arg("-o").arg(out).args(extra).output().unwrap()
}

#[test]
fn the_svg_marks_every_journaled_alert_at_its_time_on_its_side() {
    let dir = scratch("svg");
    let cfg = config(&dir, "[\"BTCUSDT\"]");
    let alerts = journal_alerts(&cfg, &dir, &[BTC10]);
    assert!(alerts.len() > 50, "the recording fires often at ±0.6: {}", alerts.len());
    let svg_path = dir.join("chart.svg");
    let out = ok(&plot(&cfg, &svg_path, &[], &[BTC10]));
    assert!(out.contains(&format!("{} alert(s)", alerts.len())), "{out}");
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let mut found = markers(&svg);
    assert_eq!(found.len(), alerts.len());
    let side = |trigger: &str| if trigger == "imbalance_buy" { '▲' } else { '▼' };
    let buys = alerts.iter().filter(|a| side(&a.1) == '▲').count();
    assert_eq!(found.iter().filter(|m| m.2 == '▲').count(), buys);
    // x is linear in time: fixed by the first and the last alert, every
    // other one's marker is where its journal time puts it.
    found.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (t0, t1) = (alerts[0].0 as f64, alerts[alerts.len() - 1].0 as f64);
    let (x0, x1) = (found[0].0, found[found.len() - 1].0);
    for (t, trigger, _) in &alerts {
        let x = x0 + (*t as f64 - t0) / (t1 - t0) * (x1 - x0);
        assert!(
            found.iter().any(|m| (m.0 - x).abs() <= 1.5 && m.2 == side(trigger)),
            "no {} marker near x={x:.1} for the alert at {t}",
            side(trigger)
        );
    }
    // Buy markers sit above sell markers (SVG y grows downward): at the alert's value.
    let mean_y = |g: char| {
        let ys: Vec<f64> = found.iter().filter(|m| m.2 == g).map(|m| m.1).collect();
        ys.iter().sum::<f64>() / ys.len() as f64
    };
    assert!(mean_y('▲') < mean_y('▼'));
    assert!(svg.contains("BTCUSDT · 2024-08-08 23:54:14 → 00:05:04 UTC · config.toml: notional top_n=10 · imbalance_buy &gt;= 0.6 edge 10s · imbalance_sell &lt;= -0.6 edge 10s"), "the title, XML-escaped");
    assert!(svg.contains(">\nBTCUSDT mid\n<") && svg.contains(">\nimbalance_ratio\n<"), "both panels");
}

#[test]
fn a_window_and_a_pair_pick_the_alerts_inside_them() {
    let dir = scratch("window");
    let cfg = config(&dir, "[\"BTCUSDT\", \"ETHUSDT\"]");
    let alerts = journal_alerts(&cfg, &dir, &[BTC10, ETH10]);
    // 2024-08-08T23:58:00Z .. 2024-08-09T00:01:00Z
    let (from, to) = (1_723_161_480_000_000_000u64, 1_723_161_660_000_000_000u64);
    let inside = |pair: &str| alerts.iter().filter(|a| a.2 == pair && a.0 >= from && a.0 <= to).count();
    let svg_path = dir.join("eth.svg");
    let window = ["--pair", "ethusdt", "--from", "2024-08-08T23:58:00Z", "--to", "1723161660"];
    ok(&plot(&cfg, &svg_path, &window, &[BTC10, ETH10]));
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert_eq!(markers(&svg).len(), inside("ETHUSDT"));
    assert!(inside("ETHUSDT") > 0 && inside("ETHUSDT") < alerts.iter().filter(|a| a.2 == "ETHUSDT").count());
    assert!(!svg.contains("BTCUSDT mid"));
    // Without --pair both pairs get their panels, stacked.
    let both = dir.join("both.svg");
    ok(&plot(&cfg, &both, &window[2..], &[BTC10, ETH10]));
    let svg = std::fs::read_to_string(&both).unwrap();
    assert!(svg.contains("BTCUSDT mid") && svg.contains("ETHUSDT mid"));
    assert_eq!(markers(&svg).len(), inside("ETHUSDT") + inside("BTCUSDT"));
}

#[test]
fn the_png_decodes_to_a_chart_with_both_marker_colours() {
    let dir = scratch("png");
    let cfg = config(&dir, "[\"BTCUSDT\"]");
    let path = dir.join("chart.png");
    ok(&plot(&cfg, &path, &[], &[BTC10]));
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1000, 374));
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(3).collect();
    let not_white = pixels.iter().filter(|p| p != &&[255, 255, 255]).count();
    assert!(not_white * 20 > pixels.len(), "drawn: {not_white} of {} pixels", pixels.len());
    // The marker colours (buy green, sell red) and the price line's blue.
    for colour in [[0, 150, 60], [210, 30, 30], [40, 70, 160]] {
        assert!(pixels.iter().any(|p| p == &colour), "no pixel of {colour:?}");
    }
}

#[test]
fn a_chart_format_other_than_png_or_svg_and_an_unknown_pair_exit_2() {
    let dir = scratch("bad");
    let cfg = config(&dir, "[\"BTCUSDT\"]");
    let o = plot(&cfg, &dir.join("chart.pdf"), &[], &[BTC10]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("chart.pdf: the chart is written as .png or .svg"), "{err}");
    let o = plot(&cfg, &dir.join("chart.svg"), &["--pair", "DOGEUSDT"], &[BTC10]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--pair DOGEUSDT: not one of the config's pairs (BTCUSDT)"));
    let o = plot(&cfg, &dir.join("chart.svg"), &["--from", "2030-01-01T00:00:00Z"], &[BTC10]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nothing to plot: no evaluated book in"), "{o:?}");
}

#[test]
fn the_readme_chart_is_what_the_command_beside_it_makes() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let command =
        readme.lines().find(|l| l.starts_with("imbalance-monitor plot ")).expect("the plot command in the README");
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    let out = args.iter().position(|a| *a == "-o").map(|i| args[i + 1]).unwrap();
    assert!(readme.contains(&format!("]({out})")), "the README shows {out}");
    let dir = scratch("readme");
    let fresh = dir.join("chart.png");
    let replaced: Vec<String> =
        args.iter().map(|a| if *a == out { fresh.display().to_string() } else { a.to_string() }).collect();
    ok(&bin().args(&replaced).output().unwrap());
    assert!(std::fs::read(&fresh).unwrap() == std::fs::read(out).unwrap(), "{out} is stale: run `{command}` again");
}
