//! occ-scan's compliance half through the real binary: a full cycle and its reports, the
//! single-instance lock, the seed's reproduced false passes judged on evidence, every
//! subcommand's `--help` and `--json`, and the dashboard opened in headless Chromium (one
//! chart mark per check, one table row per socket, no script, a screenshot that is not blank).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

const CHECKS: usize = 24;

fn scan(home: &Path, args: &[&str]) -> Output {
    Command::new(occ_tests::bin("occ-scan"))
        .args(args)
        .env("OCC_HOME", home)
        // The user-mode home under test, even while a system-mode test has /etc/occ in place.
        .env("OCC_MODE", "user")
        .env_remove("OPENCLAW_VIOLATION_NOTIFY_CMD")
        .env_remove("OPENCLAW_VIOLATION_NOTIFY_ALLOWLIST")
        .env_remove("OPENCLAW_VIOLATION_NOTIFY_STATE")
        .output()
        .unwrap()
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn write(p: &Path, s: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, s).unwrap();
}

/// A home with a few policy files, so the checks have something to judge.
fn home() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let h = d.path().join("home");
    write(
        &h.join("security/command-policy.json"),
        r#"{"version": 2, "allow": ["/usr/bin/systemctl restart nginx"]}"#,
    );
    write(
        &h.join("security/egress_allowlist.json"),
        r#"[{"cidr": "10.0.0.0/8"}]"#,
    );
    write(
        &h.join("openclaw.json"),
        "{ gateway: { bind: 'loopback', auth: { mode: 'token' } }, }",
    );
    (d, h)
}

/// A scan report that cannot be saved fails the cycle (exit 2) and says so; it is never a
/// quietly stale file.
#[test]
fn scan_compliance_cycle_fails_when_a_scan_report_cannot_be_saved() {
    let (_d, h) = home();
    // A directory where the port report goes: the rename over it fails, even as root.
    std::fs::create_dir_all(h.join("assessments/port-monitor-latest.json/in-the-way")).unwrap();
    let o = scan(&h, &["--json", "cycle", "--no-notify"]);
    let v = json_of(&o);
    assert_eq!(o.status.code(), Some(2), "{v}");
    let reports = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "reports")
        .unwrap();
    assert_eq!(reports["status"], "failed", "{reports}");
    let detail = reports["detail"].as_str().unwrap();
    assert!(
        detail.contains("scan reports not saved") && detail.contains("port-monitor-latest.json"),
        "{detail}"
    );
    // The other reports were still written, and assess alone names the problem too.
    assert!(h.join("assessments/compliance-summary.json").is_file());
    let o = scan(&h, &["--json", "assess", "--skip-openclaw", "--no-reports"]);
    let v = json_of(&o);
    assert!(
        v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("port-monitor-latest.json")),
        "{v}"
    );
}

#[test]
fn scan_compliance_cycle_writes_every_report_atomically() {
    use std::os::unix::fs::PermissionsExt;
    let (d, h) = home();
    let prom = d.path().join("textfile/occ.prom");
    let t = Instant::now();
    let o = scan(&h, &["--json", "cycle", "--prom", prom.to_str().unwrap()]);
    let elapsed = t.elapsed();
    let v = json_of(&o);
    // Violations are expected in a bare home: exit 1, never 0.
    assert_eq!(
        o.status.code(),
        Some(v["exit_code"].as_i64().unwrap() as i32)
    );
    assert_ne!(o.status.code(), Some(0), "{v}");
    let names: Vec<&str> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "preflight",
            "ports",
            "egress",
            "assess",
            "reports",
            "notify"
        ]
    );
    let a = h.join("assessments");
    for f in [
        "compliance-summary.json",
        "compliance-dashboard.html",
        "openclaw-assessment.json",
        "scan-state.json",
        "port-monitor-latest.json",
        "egress-monitor-latest.json",
    ] {
        let m = std::fs::metadata(a.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(m.permissions().mode() & 0o777, 0o600, "{f}");
    }
    // No temp files left behind.
    for e in std::fs::read_dir(&a).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!n.contains(".tmp-"), "leaked {n}");
    }
    // The summary keeps the seed's shape, with violations nested under summary.
    let s: Value =
        serde_json::from_slice(&std::fs::read(a.join("compliance-summary.json")).unwrap()).unwrap();
    assert_eq!(s["controls"].as_array().unwrap().len(), CHECKS);
    assert!(s["summary"]["violations"].is_array());
    assert!(s["summary"]["status_counts"].is_object());
    let failing = s["summary"]["violations"].as_array().unwrap().len() as u64;
    let risk_total: u64 = s["summary"]["risk_counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|x| x.as_u64().unwrap())
        .sum();
    assert_eq!(
        risk_total, failing,
        "risk counts must cover failing checks only"
    );
    let text = std::fs::read_to_string(&prom).unwrap();
    assert_eq!(
        text.matches("occ_scan_check_status{").count(),
        CHECKS,
        "{text}"
    );
    assert!(text.contains("occ_scan_findings{scan=\"ports\",type=\"unapproved-port\"}"));
    eprintln!("cycle wall time through the binary: {elapsed:?}");
}

#[test]
fn scan_compliance_cycle_quiet_prints_nothing_on_findings_and_locks() {
    let (d, h) = home();
    let o = scan(&h, &["cycle", "--quiet", "--no-notify"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        o.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    // A second cycle while the first holds the lock refuses instead of overlapping.
    let slow = d.path().join("slow-notifier");
    occ_tests::write_exe(&slow, "#!/bin/sh\nsleep 3\n");
    // Forget the last delivery so the notifier runs.
    let _ = std::fs::remove_file(h.join("security/violation-notify-state.json"));
    let argv = serde_json::json!([slow.display().to_string()]).to_string();
    let mut first = Command::new(occ_tests::bin("occ-scan"))
        .args(["cycle", "--quiet", "--child-timeout", "10"])
        .env("OCC_HOME", &h)
        .env("OCC_MODE", "user")
        .env("OPENCLAW_VIOLATION_NOTIFY_CMD", &argv)
        .env("OPENCLAW_VIOLATION_NOTIFY_ALLOWLIST", format!("[{argv}]"))
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let second = scan(&h, &["--json", "cycle", "--quiet"]);
    let v = json_of(&second);
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("another occ-scan cycle"),
        "{v}"
    );
    assert_eq!(second.status.code(), Some(1));
    first.wait().unwrap();
}

#[test]
fn scan_compliance_seed_failures_are_judged_on_evidence() {
    let (d, h) = home();
    // Missing lsof: the scan failed, so the port checks are not assessed (never compliant).
    let ports = d.path().join("ports.json");
    write(
        &ports,
        r#"{"status":"error","error":"No supported port listing tool found (lsof/ss/netstat)"}"#,
    );
    // Empty egress from a failed scan.
    let egress = d.path().join("egress.json");
    write(
        &egress,
        r#"{"status":"error","error":"Failed to run lsof","connections":[]}"#,
    );
    // A dummy `exit 0` shim and allowFrom ["*"].
    write(&h.join("bin/sudo"), "#!/bin/sh\nexit 0\n");
    std::fs::set_permissions(
        h.join("bin/sudo"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    write(
        &h.join("install-manifest.json"),
        &format!(
            r#"{{"files":[{{"path":"{}","sha256":"{}"}}]}}"#,
            h.join("bin/sudo").display(),
            "0".repeat(64)
        ),
    );
    write(
        &h.join("openclaw.json"),
        "{channels: {a: {allowFrom: ['*']}, b: {allowFrom: ['42']}}}",
    );
    let o = scan(
        &h,
        &[
            "--json",
            "assess",
            "--skip-openclaw",
            "--ports-report",
            ports.to_str().unwrap(),
            "--egress-report",
            egress.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let v = json_of(&o);
    let status = |id: &str| {
        v["controls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check_id"] == id)
            .map(|c| c["status"].as_str().unwrap().to_string())
            .unwrap()
    };
    for id in [
        "open_ports_approved",
        "insecure_ports_remediated",
        "egress_connections_approved",
    ] {
        assert_eq!(status(id), "not_assessed", "{id}");
    }
    for id in [
        "runtime_privilege_hook_installed",
        "privilege_approval_required",
        "channel_allowlist_configured",
    ] {
        assert_eq!(status(id), "violation", "{id}");
    }
}

#[test]
fn scan_compliance_every_subcommand_has_help_and_json() {
    let (_d, h) = home();
    for sub in [
        "assess",
        "report",
        "notify",
        "preflight",
        "cycle",
        "schedule",
    ] {
        let o = scan(&h, &[sub, "--help"]);
        assert!(o.status.success(), "{sub} --help");
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("--json"),
            "{sub} --help lacks --json"
        );
    }
    let o = scan(&h, &["--json", "preflight"]);
    let v = json_of(&o);
    for k in [
        "status",
        "critical",
        "require_policy_files",
        "tools",
        "paths",
        "policy_files",
        "optional_files",
        "permissions",
        "next_steps",
    ] {
        assert!(v.get(k).is_some(), "preflight lacks {k}");
    }
    // An invalid policy file fails preflight, naming the file and key.
    write(
        &h.join("security/egress_allowlist.json"),
        r#"[{"hostname": "x"}]"#,
    );
    let o = scan(&h, &["--json", "preflight"]);
    assert_eq!(o.status.code(), Some(1));
    let v = json_of(&o);
    assert!(
        v["policy_files"]["invalid"]
            .to_string()
            .contains("egress_allowlist.json"),
        "{v}"
    );
    // report and notify need an assessment first: exit 2 with a JSON error.
    let o = scan(&h, &["--json", "report"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(json_of(&o)["error"].is_string());
    let o = scan(&h, &["--json", "notify"]);
    assert_eq!(o.status.code(), Some(2));
    let o = scan(&h, &["--json", "schedule", "install", "--every", "7m"]);
    assert_eq!(o.status.code(), Some(2));
}

// ---------------------------------------------------------------------------------------------
// Headless Chromium.

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|n| {
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .map(move |d| d.join(n))
                .collect::<Vec<_>>()
        })
        .find(|p| p.is_file())
}

fn chrome(bin: &Path, profile: &Path, extra: &[String], url: &str) -> Output {
    let mut c = Command::new(bin);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(url)
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    // Drain the pipes on threads so a chatty browser cannot block; give it 120 s at most.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut b);
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut b);
        b
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// Count of distinct colours and the luminance variance of an RGB(A) PNG.
fn png_stats(p: &Path) -> (usize, f64) {
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(p).unwrap()));
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let bytes = &buf[..info.buffer_size()];
    let step = match info.color_type {
        png::ColorType::Rgba => 4,
        png::ColorType::Rgb => 3,
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    let mut colours = std::collections::HashSet::new();
    let (mut sum, mut sq, mut n) = (0f64, 0f64, 0f64);
    for px in bytes.chunks_exact(step) {
        colours.insert((px[0], px[1], px[2]));
        let l = 0.299 * f64::from(px[0]) + 0.587 * f64::from(px[1]) + 0.114 * f64::from(px[2]);
        sum += l;
        sq += l * l;
        n += 1.0;
    }
    let mean = sum / n;
    (colours.len(), sq / n - mean * mean)
}

#[test]
fn scan_compliance_dashboard_in_headless_chromium() {
    let Some(bin) = chromium() else {
        occ_tests::skip("needs chromium (apt-get install -y chromium)");
        return;
    };
    // Real sockets: a listener and a connection of our own, so the tables have rows.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (d, h) = home();
    let o = scan(&h, &["--json", "cycle", "--no-notify"]);
    assert!(
        o.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let a = h.join("assessments");
    // Earlier runs, so the history chart has a line with dated ticks; then a second cycle.
    let state_file = a.join("scan-state.json");
    let mut state: Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    let first = state["history"][0].clone();
    let mut runs: Vec<Value> = (1..=5)
        .map(|day| {
            let mut r = first.clone();
            r["at"] = days_ago(6 - day).into();
            r["violation"] = (14 - 2 * day).into();
            r["port_findings"] = (6 - day).into();
            r
        })
        .collect();
    runs.push(first);
    state["history"] = runs.into();
    std::fs::write(&state_file, state.to_string()).unwrap();
    let o = scan(&h, &["--json", "cycle", "--no-notify"]);
    assert!(o.status.code().is_some_and(|c| c <= 1));
    let ports: Value =
        serde_json::from_slice(&std::fs::read(a.join("port-monitor-latest.json")).unwrap())
            .unwrap();
    let egress: Value =
        serde_json::from_slice(&std::fs::read(a.join("egress-monitor-latest.json")).unwrap())
            .unwrap();
    let n_sock = ports["listening_services"].as_array().map_or(0, Vec::len);
    let n_conn = egress["connections"].as_array().map_or(0, Vec::len);
    assert!(n_sock >= 1, "our own listener is not in the port report");
    let url = format!("file://{}", a.join("compliance-dashboard.html").display());
    let profile = d.path().join("chrome-profile");

    let o = chrome(&bin, &profile, &["--dump-dom".into()], &url);
    let dom = String::from_utf8_lossy(&o.stdout);
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(dom.contains("Compliance Dashboard"), "no DOM: {log}");
    assert_eq!(
        dom.matches("class=\"mark\"").count(),
        CHECKS,
        "one chart mark per check"
    );
    assert_eq!(
        dom.matches("<tr class=\"sock\">").count(),
        n_sock,
        "one row per listening socket"
    );
    assert_eq!(
        dom.matches("<tr class=\"conn\">").count(),
        n_conn,
        "one row per connection"
    );
    assert!(!dom.contains("<script"), "the dashboard has no script");
    assert!(!log.contains("Uncaught"), "script errors: {log}");
    assert!(
        !log.to_lowercase().contains("refused to load"),
        "CSP blocked a load: {log}"
    );

    // Layout in a real browser, at a desktop and a phone width, light and dark.
    let mut b = crate::cdp::Browser::start(&bin, d.path(), Duration::from_secs(180));
    let artefacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let mut backgrounds = Vec::new();
    for (width, height, scheme) in [
        (1280, 1500, "light"),
        (390, 1700, "light"),
        (390, 1700, "dark"),
    ] {
        b.page(
            "Emulation.setDeviceMetricsOverride",
            serde_json::json!({"width": width, "height": height, "deviceScaleFactor": 1,
                "mobile": width < 600}),
        );
        b.page(
            "Emulation.setEmulatedMedia",
            serde_json::json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]}),
        );
        b.open(&url);
        let v: Value = serde_json::from_str(b.eval(LAYOUT).as_str().expect("layout JSON")).unwrap();
        let at = format!("at {width} px ({scheme})");
        assert_eq!(v["innerWidth"], width, "{at}: viewport not applied: {v}");
        assert!(
            v["scrollWidth"].as_u64() <= v["innerWidth"].as_u64(),
            "{at}: the page scrolls sideways: {v}"
        );
        assert_eq!(
            v["overflowing"],
            serde_json::json!([]),
            "{at}: boxes scroll sideways"
        );
        assert_eq!(
            v["clipped"],
            serde_json::json!([]),
            "{at}: chart text clipped"
        );
        assert_eq!(
            v["tiny"],
            serde_json::json!([]),
            "{at}: chart text too small to read"
        );
        let charts = v["charts"].as_array().unwrap();
        let ids: Vec<&str> = charts.iter().map(|c| c["id"].as_str().unwrap()).collect();
        assert_eq!(
            ids,
            ["status-chart", "framework-chart", "history-chart"],
            "{at}"
        );
        for c in charts {
            assert!(c["title"].as_str().unwrap().ends_with('?'), "{at}: {c}");
            assert!(c["legend"].as_u64().unwrap() >= 2, "{at}: no legend: {c}");
        }
        // Counts on the status legend add up to the checks; three dated ticks at least.
        assert_eq!(v["statusTotal"], CHECKS, "{at}: {v}");
        assert!(v["ticks"].as_u64().unwrap() >= 3, "{at}: {v}");
        assert_eq!(v["overlapping"], serde_json::json!([]), "{at}: {v}");
        assert_eq!(
            v["cards"],
            width < 600,
            "{at}: tables are cards only on a phone"
        );
        backgrounds.push(v["background"].clone());
        if scheme == "light" {
            let shot = artefacts.join(format!("dashboard-{width}.png"));
            std::fs::write(&shot, b.screenshot()).unwrap();
            let (colours, variance) = png_stats(&shot);
            assert!(
                colours > 16 && variance > 100.0,
                "{at}: blank screenshot: {colours} colours, variance {variance}"
            );
            if let Some(dir) = std::env::var_os("OCC_DASHBOARD_PNG_DIR") {
                std::fs::copy(
                    &shot,
                    Path::new(&dir).join(format!("dashboard-{width}.png")),
                )
                .unwrap();
            }
        }
    }
    assert_ne!(backgrounds[1], backgrounds[2], "dark mode changes nothing");
}

/// "YYYY-MM-DDT06:00:00Z", `n` days before today (UTC).
fn days_ago(n: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Howard Hinnant's civil_from_days.
    let z = (now / 86_400 - n) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T06:00:00Z")
}

/// Measures the page: sideways scrolling, chart text outside its chart or cut by its box,
/// each chart's title and legend, and whether tables are shown as cards.
const LAYOUT: &str = r#"(() => {
  const d = document.documentElement;
  const out = {scrollWidth: d.scrollWidth, innerWidth: innerWidth, charts: [], clipped: [],
    tiny: [], overflowing: [], statusTotal: 0, ticks: 0, overlapping: [],
    background: getComputedStyle(document.body).backgroundColor,
    cards: getComputedStyle(document.querySelector('table td')).display === 'grid'};
  for (const el of document.querySelectorAll('body *')) {
    const ox = getComputedStyle(el).overflowX;
    if (ox !== 'visible' && el.scrollWidth > el.clientWidth + 1)
      out.overflowing.push(el.tagName + '#' + el.id + '.' + el.className);
  }
  for (const f of document.querySelectorAll('figure.chart')) {
    const box = f.getBoundingClientRect();
    const cap = f.querySelector('figcaption');
    out.charts.push({id: f.id, title: cap ? cap.textContent.trim() : '',
      legend: f.querySelectorAll('ul.legend li').length});
    const w = document.createTreeWalker(f, NodeFilter.SHOW_TEXT);
    while (w.nextNode()) {
      const t = w.currentNode, text = t.textContent.trim();
      if (!text) continue;
      const r = document.createRange();
      r.selectNodeContents(t);
      for (const b of r.getClientRects()) {
        if (b.left < box.left - 0.5 || b.right > box.right + 0.5 || b.top < box.top - 0.5 ||
            b.bottom > box.bottom + 0.5) out.clipped.push(f.id + ': ' + text);
      }
      for (let el = t.parentElement; el && el !== f; el = el.parentElement) {
        const ox = getComputedStyle(el).overflowX;
        if (ox !== 'visible' && el.scrollWidth > el.clientWidth + 1)
          out.clipped.push(f.id + ': ' + text + ' cut by ' + el.className);
      }
      if (parseFloat(getComputedStyle(t.parentElement).fontSize) < 10)
        out.tiny.push(f.id + ': ' + text);
    }
  }
  for (const b of document.querySelectorAll('#status-chart ul.legend b'))
    out.statusTotal += parseInt(b.textContent, 10);
  const ticks = [...document.querySelectorAll('#history-chart .tick')];
  out.ticks = ticks.length;
  // Dated ticks side by side must not touch: each ends before the next begins.
  for (let i = 1; i < ticks.length; i++) {
    const a = ticks[i - 1].getBoundingClientRect(), b = ticks[i].getBoundingClientRect();
    if (a.right > b.left - 2)
      out.overlapping.push(ticks[i - 1].textContent + ' / ' + ticks[i].textContent);
  }
  return JSON.stringify(out);
})()"#;

#[test]
/// Only OpenClaw's pathPrepend decides (it goes before the login shell's PATH, which goes
/// before the gateway's own): a gateway whose own PATH has the shim first is not enough.
fn scan_compliance_shim_first_in_path_judges_pathprepend_and_finds_the_gateway() {
    let _gateway = occ_tests::gateway_lock();
    use std::os::unix::fs::PermissionsExt;
    let (d, h) = home();
    let shim_dir = h.join("bin");
    write(&shim_dir.join("sudo"), "#!/bin/sh\nexit 1\n");
    std::fs::set_permissions(
        shim_dir.join("sudo"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let other = d.path().join("sbin");
    write(&other.join("sudo"), "#!/bin/sh\nexit 0\n");
    std::fs::set_permissions(other.join("sudo"), std::fs::Permissions::from_mode(0o755)).unwrap();
    // A process whose executable is named like the gateway, with its own PATH.
    let gw = d.path().join("openclaw-gateway");
    occ_tests::copy_exe("/bin/sleep", &gw);
    let ports = d.path().join("ports.json");
    write(
        &ports,
        r#"{"status":"ok","tool":"proc","listening_services":[],"findings":[]}"#,
    );
    let status_with = |prepend: &[&Path], path: String, by_pid: bool| {
        let list: Vec<String> = prepend.iter().map(|p| p.display().to_string()).collect();
        write(
            &h.join("openclaw.json"),
            &serde_json::json!({
                "gateway": {"bind": "loopback", "auth": {"mode": "token"}},
                "tools": {"exec": {"pathPrepend": list}},
            })
            .to_string(),
        );
        let mut child = Command::new(&gw)
            .arg("30")
            .env_clear()
            .env("PATH", path)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let pid = child.id().to_string();
        let mut args = vec!["--json", "assess", "--skip-openclaw", "--no-reports"];
        args.extend([
            "--ports-report",
            ports.to_str().unwrap(),
            "--egress-report",
            ports.to_str().unwrap(),
        ]);
        if by_pid {
            args.extend(["--gateway-pid", pid.as_str()]);
        }
        let v = json_of(&scan(&h, &args));
        let _ = child.kill();
        let _ = child.wait();
        let c = v["controls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check_id"] == "shim_first_in_path")
            .cloned()
            .unwrap();
        (c["status"].as_str().unwrap().to_string(), c.to_string())
    };
    let plain = "/usr/bin:/bin".to_string();
    let shim_first = format!("{}:/usr/bin:/bin", shim_dir.display());
    let (s, c) = status_with(&[&shim_dir], plain.clone(), true);
    assert_eq!(s, "compliant", "{c}");
    assert!(c.contains(&format!("PATH={plain}")), "{c}");
    let (s, c) = status_with(&[&other, &shim_dir], plain.clone(), true);
    assert_eq!(s, "violation", "{c}");
    // The drop-in route: the gateway's own PATH alone does not hold.
    let (s, c) = status_with(&[], shim_first, true);
    assert_eq!(s, "violation", "{c}");
    // Found without being told the pid: by its comm in /proc.
    let (s, c) = status_with(&[&shim_dir], plain, false);
    assert_eq!(s, "compliant", "{c}");
}
