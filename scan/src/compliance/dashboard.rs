//! The compliance dashboard: one self-contained HTML file with inline CSS and inline SVG, no
//! script and nothing loaded from the network (a CSP meta tag forbids it). Every value that
//! comes from the host or a config file is HTML-escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::model::{
    num_or_dash, or_dash, risk_counts, status_counts, Assessment, CheckResult, NetReport, NetScan,
    Risk, RunRecord, Status,
};

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {
                let _ = write!(o, "&#x{:x};", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

/// The CSS class of a status colour (defined for light and dark in [`CSS`]).
fn status_class(s: Status) -> &'static str {
    match s {
        Status::Compliant => "s-compliant",
        Status::Partial => "s-partial",
        Status::Violation => "s-violation",
        Status::NotAssessed => "s-not_assessed",
    }
}

fn risk_class(r: Risk) -> &'static str {
    match r {
        Risk::Critical => "r-critical",
        Risk::High => "r-high",
        Risk::Medium => "r-medium",
        Risk::Low => "r-low",
    }
}

/// The statuses in the order every chart and legend uses: worst first.
const STATUSES: [Status; 4] = [
    Status::Violation,
    Status::Partial,
    Status::Compliant,
    Status::NotAssessed,
];

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Violation => "Violation",
        Status::Partial => "Partial",
        Status::Compliant => "Compliant",
        Status::NotAssessed => "Not assessed",
    }
}

const CSS: &str = r#"
:root{color-scheme:light dark;--bg:#f6f7f9;--fg:#111827;--card:#fff;--mut:#5b6472;--line:#e5e7eb;--th:#f3f4f6;--head:#111827;--headfg:#fff;--headmut:#d1d5db;
--violation:#c62828;--partial:#b7791f;--compliant:#1a7f37;--not_assessed:#6b7280;--findings:#2563eb;--failing:#c62828;--grid:#e5e7eb;--track:#eef0f3;
--critical:#7f1d1d;--high:#c62828;--medium:#b7791f;--low:#2563eb}
@media (prefers-color-scheme:dark){:root{--bg:#0f1115;--fg:#e5e7eb;--card:#171a21;--mut:#9ca3af;--line:#2a2f3a;--th:#1f2430;--head:#05070a;--headfg:#f9fafb;--headmut:#9ca3af;
--violation:#ef5350;--partial:#e0a030;--compliant:#3fb950;--not_assessed:#8b949e;--findings:#58a6ff;--failing:#ef5350;--grid:#2a2f3a;--track:#232833;
--critical:#b91c1c;--high:#ef5350;--medium:#e0a030;--low:#58a6ff}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
header{padding:16px 20px;background:var(--head);color:var(--headfg)}
header h1{margin:0 0 4px;font-size:20px}
header p{margin:0;color:var(--headmut);font-size:13px;overflow-wrap:anywhere}
main{padding:16px;max-width:1200px;margin:0 auto}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px;margin:0 0 16px;min-width:0}
h2{font-size:16px;margin:0 0 10px}
p{overflow-wrap:anywhere}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(120px,1fr));gap:10px}
.kpi{border-radius:8px;padding:10px 12px;color:#fff}
.kpi b{display:block;font-size:26px;line-height:1.1}
.grid2{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:16px}
@media (max-width:820px){.grid2{grid-template-columns:minmax(0,1fr)}main{padding:8px}header h1{font-size:18px}}
figure.chart{margin:0;min-width:0}
figure.chart figcaption{font-weight:600;margin:0 0 2px}
figure.chart .sub{color:var(--mut);font-size:12px;margin:0 0 10px}
.s-violation{background:var(--violation)}.s-partial{background:var(--partial)}.s-compliant{background:var(--compliant)}.s-not_assessed{background:var(--not_assessed)}
.r-critical{background:var(--critical)}.r-high{background:var(--high)}.r-medium{background:var(--medium)}.r-low{background:var(--low)}
.k-overdue{background:#374151}
.stack{display:flex;gap:1px;height:28px;border-radius:6px;overflow:hidden;background:var(--track)}
.stack .mark{flex:1 1 0;min-width:0}
.mark[data-status=violation]{background:var(--violation)}.mark[data-status=partial]{background:var(--partial)}
.mark[data-status=compliant]{background:var(--compliant)}.mark[data-status=not_assessed]{background:var(--not_assessed)}
ul.legend{list-style:none;margin:10px 0 0;padding:0;display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px}
ul.legend li{display:flex;align-items:center;gap:5px;white-space:nowrap}
ul.legend i{display:inline-block;width:12px;height:12px;border-radius:3px;flex:none}
ul.legend i.line{height:3px;border-radius:2px}
.fam{display:grid;gap:8px}
.famrow{display:grid;grid-template-columns:minmax(0,9em) minmax(0,1fr) auto;gap:4px 10px;align-items:center}
.fam .name{font-size:13px;overflow-wrap:anywhere}
.fam .pct{font-size:13px;font-variant-numeric:tabular-nums;text-align:right;white-space:nowrap}
.fam .pct b{font-size:15px}
.bar{display:flex;height:16px;border-radius:4px;overflow:hidden;background:var(--track)}
.bar span{min-width:0}
@media (max-width:600px){.famrow{grid-template-columns:minmax(0,1fr) auto}.famrow .bar{grid-column:1 / -1;order:3}}
.line-chart{display:grid;grid-template-columns:auto minmax(0,1fr);grid-template-rows:180px auto;column-gap:6px}
.yaxis{position:relative;font-size:11px;color:var(--mut);text-align:right;min-width:2ch}
.yaxis span{position:absolute;right:0;transform:translateY(-50%);line-height:1}
.yaxis span.top{transform:none}.yaxis span.bottom{transform:translateY(-100%)}
.plot{position:relative;border-left:1px solid var(--mut);border-bottom:1px solid var(--mut)}
.plot svg{position:absolute;inset:0;width:100%;height:100%;display:block;overflow:visible}
.plot .grid{stroke:var(--grid);stroke-width:1}
.plot .series{fill:none;stroke-width:2.5;stroke-linejoin:round}
.plot .failing{stroke:var(--failing)}.plot .findings{stroke:var(--findings)}
.plot .dot{position:absolute;width:8px;height:8px;margin:-4px 0 0 -4px;border-radius:50%;border:2px solid var(--card)}
.dot.failing{background:var(--failing)}.dot.findings{background:var(--findings)}
.xaxis{grid-column:2;position:relative;height:2.8em;font-size:11px;color:var(--mut)}
.xaxis span{position:absolute;top:4px;transform:translateX(-50%);text-align:center;white-space:nowrap;line-height:1.25}
.xaxis span.first{transform:none;text-align:left}.xaxis span.last{transform:translateX(-100%);text-align:right}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:6px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:var(--th);overflow-wrap:normal}
td.id{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
@media (min-width:601px){td.id{min-width:14em}}
td.mono,span.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px;word-break:break-all}
.pill{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px;white-space:nowrap}
.muted{color:var(--mut)}
ul.ev{margin:0;padding-left:16px}
@media (max-width:600px){
 table,thead,tbody,tr,th,td{display:block;width:100%}
 thead{display:none}
 tr{border:1px solid var(--line);border-radius:8px;margin:0 0 10px;padding:4px 0;background:var(--card)}
 td{border:0;display:grid;grid-template-columns:minmax(0,7.5em) minmax(0,1fr);gap:8px;padding:3px 10px}
 td::before{content:attr(data-label);font-weight:600;color:var(--mut);font-family:system-ui,sans-serif;font-size:12px}
}
"#;

fn pill(s: Status) -> String {
    format!(
        "<span class=\"pill {}\">{}</span>",
        status_class(s),
        s.as_str()
    )
}

fn risk_pill(r: Risk) -> String {
    format!(
        "<span class=\"pill {}\">{}</span>",
        risk_class(r),
        r.as_str()
    )
}

/// The legend of the status colours, each with its count.
fn status_legend(counts: &[(Status, usize)]) -> String {
    let mut s = String::from("<ul class=\"legend\">");
    for (st, n) in counts {
        let _ = write!(
            s,
            "<li><i class=\"{}\"></i>{} <b>{n}</b></li>",
            status_class(*st),
            status_word(*st)
        );
    }
    s.push_str("</ul>");
    s
}

/// Chart 1: how many checks are in each status. One stacked bar of one equal mark per check,
/// grouped worst first, so each status's length is its count.
fn status_chart(checks: &[CheckResult]) -> String {
    let counts: Vec<(Status, usize)> = STATUSES
        .iter()
        .map(|st| (*st, checks.iter().filter(|c| c.status == *st).count()))
        .collect();
    let summary: Vec<String> = counts
        .iter()
        .map(|(st, n)| format!("{n} {}", status_word(*st).to_lowercase()))
        .collect();
    let mut s = format!(
        "<figure class=\"chart\" id=\"status-chart\"><figcaption>How many checks are in each status?</figcaption>\
         <p class=\"sub\">{} checks; one block per check.</p>\
         <div class=\"stack\" role=\"img\" aria-label=\"{}\">",
        checks.len(),
        esc(&summary.join(", "))
    );
    for st in STATUSES {
        for c in checks.iter().filter(|c| c.status == st) {
            let _ = write!(
                s,
                "<span class=\"mark\" data-check=\"{}\" data-status=\"{}\" title=\"{}: {}\"></span>",
                esc(&c.check_id),
                st.as_str(),
                esc(&c.check_id),
                st.as_str()
            );
        }
    }
    s.push_str("</div>");
    s.push_str(&status_legend(&counts));
    s.push_str("</figure>");
    s
}

/// Chart 2: compliance per framework family, as the share of the checks mapped to the family
/// that are compliant; the bar shows the rest of those checks by status.
fn family_chart(checks: &[CheckResult]) -> String {
    type Ids = fn(&CheckResult) -> &Vec<String>;
    let families: [(&str, Ids); 3] = [
        ("ISO 27001:2022", |c| &c.iso27001),
        ("NIST CSF 2.0", |c| &c.nist),
        ("NIST SP 800-53 r5", |c| &c.sp800_53),
    ];
    let mut s = String::from(
        "<figure class=\"chart\" id=\"framework-chart\"><figcaption>How compliant is each framework family?</figcaption>\
         <p class=\"sub\">Compliant checks as a share of the checks mapped to the family's controls.</p><div class=\"fam\">",
    );
    for (name, ids) in families {
        let mapped: Vec<&CheckResult> = checks.iter().filter(|c| !ids(c).is_empty()).collect();
        let total = mapped.len();
        let n = |st: Status| mapped.iter().filter(|c| c.status == st).count();
        let compliant = n(Status::Compliant);
        let pct = (compliant * 100).checked_div(total).unwrap_or(0);
        let _ = write!(
            s,
            "<div class=\"famrow\"><span class=\"name\">{name}</span><div class=\"bar\" role=\"img\" aria-label=\"{name}: {pct}% compliant\">"
        );
        for st in STATUSES {
            let k = n(st);
            if k > 0 {
                let _ = write!(
                    s,
                    "<span class=\"{}\" style=\"width:{:.2}%\" title=\"{name}: {k} {}\"></span>",
                    status_class(st),
                    k as f64 * 100.0 / total as f64,
                    st.as_str()
                );
            }
        }
        let _ = write!(
            s,
            "</div><span class=\"pct\"><b>{pct}%</b> ({compliant} of {total})</span></div>"
        );
    }
    s.push_str("</div>");
    let counts: Vec<(Status, usize)> = STATUSES.iter().map(|st| (*st, 0)).collect();
    // The same colours as chart 1; the counts there are across all checks.
    let legend = status_legend(&counts).replace(" <b>0</b>", "");
    s.push_str(&legend);
    s.push_str("</figure>");
    s
}

/// Seconds since the epoch of an RFC 3339 time, if it is one.
fn epoch(at: &str) -> Option<f64> {
    humantime::parse_rfc3339_weak(at.trim_end_matches('Z'))
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
}

/// Chart 3: findings over time. Two lines (failing checks; port and egress findings) placed
/// by the time of each run, with dated ticks. Text is HTML around the SVG, so it never
/// scales down or clips on a phone.
fn history_chart(a: &Assessment) -> String {
    let runs = &a.history;
    let head = "<figure class=\"chart\" id=\"history-chart\"><figcaption>Are findings going down?</figcaption>\
         <p class=\"sub\">Failing checks and scan findings at each run.</p>";
    let legend = "<ul class=\"legend\"><li><i class=\"line\" style=\"background:var(--failing)\"></i>Failing checks (violation + partial)</li>\
         <li><i class=\"line\" style=\"background:var(--findings)\"></i>Port + egress findings</li></ul>";
    if runs.is_empty() {
        return format!("{head}<p class=\"muted\">No runs recorded yet.</p>{legend}</figure>");
    }
    // x in 0..=100 by time; by order when the times are missing or all equal.
    let times: Vec<Option<f64>> = runs.iter().map(|r| epoch(&r.at)).collect();
    let (lo, hi) = times
        .iter()
        .flatten()
        .fold((f64::MAX, f64::MIN), |(l, h), t| (l.min(*t), h.max(*t)));
    let by_time = times.iter().all(Option::is_some) && hi > lo;
    let x = |i: usize| -> f64 {
        if by_time {
            (times[i].unwrap_or(lo) - lo) * 100.0 / (hi - lo)
        } else if runs.len() == 1 {
            50.0
        } else {
            i as f64 * 100.0 / (runs.len() - 1) as f64
        }
    };
    let failing = |r: &RunRecord| r.violation + r.partial;
    let findings = |r: &RunRecord| r.port_findings + r.egress_findings;
    let max = runs
        .iter()
        .map(|r| failing(r).max(findings(r)))
        .max()
        .unwrap_or(0)
        .max(1);
    // A round top for the y axis, so the middle tick is a whole number.
    let top = if max % 2 == 0 { max } else { max + 1 };
    let y = |v: u32| 100.0 - f64::from(v) * 100.0 / f64::from(top);
    let mut s = format!(
        "{head}<div class=\"line-chart\"><div class=\"yaxis\"><span class=\"top\" style=\"top:0\">{top}</span>\
         <span style=\"top:50%\">{}</span><span class=\"bottom\" style=\"top:100%\">0</span></div>\
         <div class=\"plot\" role=\"img\" aria-label=\"Findings over {} run(s)\">\
         <svg viewBox=\"0 0 100 100\" preserveAspectRatio=\"none\" aria-hidden=\"true\">\
         <line class=\"grid\" x1=\"0\" y1=\"0\" x2=\"100\" y2=\"0\" vector-effect=\"non-scaling-stroke\"/>\
         <line class=\"grid\" x1=\"0\" y1=\"50\" x2=\"100\" y2=\"50\" vector-effect=\"non-scaling-stroke\"/>",
        top / 2,
        runs.len()
    );
    let mut dots = String::new();
    for (class, value) in [
        ("failing", &failing as &dyn Fn(&RunRecord) -> u32),
        ("findings", &findings),
    ] {
        let pts: Vec<String> = runs
            .iter()
            .enumerate()
            .map(|(i, r)| format!("{:.2},{:.2}", x(i), y(value(r))))
            .collect();
        let _ = write!(
            s,
            "<polyline class=\"series {class}\" points=\"{}\" vector-effect=\"non-scaling-stroke\"/>",
            pts.join(" ")
        );
        for (i, r) in runs.iter().enumerate() {
            let _ = write!(
                dots,
                "<span class=\"dot {class}\" style=\"left:{:.2}%;top:{:.2}%\" title=\"{}: {} {class}\"></span>",
                x(i),
                y(value(r)),
                esc(&r.at),
                value(r)
            );
        }
    }
    let _ = write!(s, "</svg>{dots}</div><div class=\"xaxis\">");
    // Dated ticks at least 22 % of the width apart, always the first and the last run: on
    // a 390 px phone the plot is about 290 px wide, so 64 px between ticks, more than a
    // "30 Dec" label needs (the year is left out while every run is in one year; each tick's
    // title has the whole time). The Chromium test checks that no two touch.
    const TICK_GAP: f64 = 22.0;
    let mut ticks: Vec<usize> = Vec::new();
    for i in 0..runs.len() {
        if ticks.last().is_none_or(|t| x(i) - x(*t) >= TICK_GAP) {
            ticks.push(i);
        }
    }
    let last = runs.len() - 1;
    if ticks.last() != Some(&last) {
        if ticks.len() > 1 && x(last) - x(ticks[ticks.len() - 1]) < TICK_GAP {
            ticks.pop();
        }
        ticks.push(last);
    }
    let one_year = runs.iter().all(|r| r.at.get(..4) == runs[0].at.get(..4));
    for (j, i) in ticks.iter().enumerate() {
        let (date, time) = tick_label(&runs[*i].at, !one_year);
        let class = if ticks.len() == 1 {
            ""
        } else if j == 0 {
            "first"
        } else if j == ticks.len() - 1 {
            "last"
        } else {
            ""
        };
        let _ = write!(
            s,
            "<span class=\"tick {class}\" style=\"left:{:.2}%\" title=\"{}\">{}<br>{}</span>",
            x(*i),
            esc(&runs[*i].at),
            esc(&date),
            esc(&time)
        );
    }
    s.push_str("</div></div>");
    s.push_str(legend);
    s.push_str("</figure>");
    s
}

/// "7 Jan 2026" and "06:00" of an RFC 3339 time; the text itself when it is not one.
fn tick_label(at: &str, with_year: bool) -> (String, String) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (date, time) = at.split_once('T').unwrap_or((at, ""));
    let mut parts = date.split('-');
    let (y, m, d) = (parts.next(), parts.next(), parts.next());
    let month = m
        .and_then(|m| m.parse::<usize>().ok())
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)));
    let day = d.and_then(|d| d.parse::<u32>().ok());
    let date = match (y, month, day) {
        (Some(y), Some(m), Some(d)) if with_year => format!("{d} {m} {y}"),
        (Some(_), Some(m), Some(d)) => format!("{d} {m}"),
        _ => date.to_string(),
    };
    (date, time.chars().take(5).collect())
}

/// One table: headers, and rows of (class, cells of (class, html)). Each cell carries its
/// header as `data-label`, which the card layout under 600 px shows beside the value.
fn table(id: &str, headers: &[&str], rows: &[(&str, Vec<(&str, String)>)]) -> String {
    let mut s = format!("<table id=\"{id}\"><thead><tr>");
    for h in headers {
        let _ = write!(s, "<th>{h}</th>");
    }
    s.push_str("</tr></thead><tbody>");
    for (class, cells) in rows {
        if class.is_empty() {
            s.push_str("<tr>");
        } else {
            let _ = write!(s, "<tr class=\"{class}\">");
        }
        for ((cls, html), h) in cells.iter().zip(headers) {
            if cls.is_empty() {
                let _ = write!(s, "<td data-label=\"{h}\">{html}</td>");
            } else {
                let _ = write!(s, "<td class=\"{cls}\" data-label=\"{h}\">{html}</td>");
            }
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

/// The scan behind a table, or the paragraph that stands in for it.
fn table_scan<'a>(r: Option<&'a NetReport>, what: &str) -> Result<&'a NetScan, String> {
    match r {
        None => Err(format!(
            "<p class=\"muted\">No {} report (run <code>occ-scan cycle</code>).</p>",
            what.to_lowercase()
        )),
        Some(NetReport::Failed(e)) => Err(format!(
            "<p class=\"muted\">{what} scan failed: {}</p>",
            esc(e)
        )),
        Some(NetReport::Ok(s)) => Ok(s),
    }
}

fn socket_table(r: Option<&NetReport>) -> String {
    let scan = match table_scan(r, "Port") {
        Ok(s) => s,
        Err(p) => return p,
    };
    let rows: Vec<(&str, Vec<(&str, String)>)> = scan
        .listening_services
        .iter()
        .map(|r| {
            (
                "sock",
                vec![
                    ("", esc(or_dash(r.protocol.as_deref()))),
                    ("mono", esc(or_dash(r.address.as_deref()))),
                    ("", num_or_dash(r.port)),
                    ("", num_or_dash(r.pid)),
                    ("", esc(or_dash(r.comm.as_deref()))),
                    ("mono", esc(or_dash(r.path.as_deref()))),
                    ("", esc(or_dash(r.uid.as_deref()))),
                    ("", num_or_dash(r.net_namespace)),
                ],
            )
        })
        .collect();
    format!(
        "<p class=\"muted\">{} listening socket(s), method {}.</p>{}",
        rows.len(),
        esc(scan_method(scan)),
        table(
            "ports-table",
            &[
                "Proto",
                "Address",
                "Port",
                "PID",
                "Process",
                "Executable",
                "UID",
                "Netns"
            ],
            &rows
        )
    )
}

fn egress_table(r: Option<&NetReport>) -> String {
    let scan = match table_scan(r, "Egress") {
        Ok(s) => s,
        Err(p) => return p,
    };
    let rows: Vec<(&str, Vec<(&str, String)>)> = scan
        .connections
        .iter()
        .map(|r| {
            (
                "conn",
                vec![
                    ("", esc(or_dash(r.protocol.as_deref()))),
                    (
                        "mono",
                        format!(
                            "{}:{}",
                            esc(or_dash(r.address.as_deref())),
                            num_or_dash(r.port)
                        ),
                    ),
                    (
                        "mono",
                        format!(
                            "{}:{}",
                            esc(or_dash(r.remote_address.as_deref())),
                            num_or_dash(r.remote_port)
                        ),
                    ),
                    ("", esc(or_dash(r.state.as_deref()))),
                    ("", num_or_dash(r.pid)),
                    ("", esc(or_dash(r.comm.as_deref()))),
                    ("mono", esc(or_dash(r.path.as_deref()))),
                    ("", num_or_dash(r.allowed_by)),
                ],
            )
        })
        .collect();
    format!(
        "<p class=\"muted\">{} outbound connection(s), method {}. {}</p>{}",
        rows.len(),
        esc(scan_method(scan)),
        esc(&scan.blind_spots.join("; ")),
        table(
            "egress-table",
            &[
                "Proto",
                "Local",
                "Remote",
                "State",
                "PID",
                "Process",
                "Executable",
                "Allowed by rule"
            ],
            &rows
        )
    )
}

/// The method in words, else the tool.
fn scan_method(s: &NetScan) -> &str {
    or_dash(s.method.as_deref().or(s.tool.as_deref()))
}

fn join(v: &[String]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        esc(&v.join(", "))
    }
}

/// Renders the dashboard.
pub fn render(a: &Assessment) -> String {
    let sc = status_counts(a);
    let rc = risk_counts(a);
    let n = |m: &BTreeMap<String, u32>, k: &str| m.get(k).copied().unwrap_or(0);
    let overdue = a.checks.iter().filter(|c| c.overdue).count();
    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\
         <title>Compliance Dashboard - {sys}</title><style>{CSS}</style></head><body>\
         <header><h1>ISO 27001 / NIST Compliance Dashboard</h1>\
         <p>System: {sys} &middot; Assessed: {at} &middot; {fw}</p></header><main>",
        sys = esc(&a.metadata.system),
        at = esc(&a.metadata.generated_at_utc),
        fw = esc(&a.metadata.frameworks.join(" · ")),
    );
    let tile = |label: &str, v: usize, class: &str| {
        format!("<div class=\"kpi {class}\"><b>{v}</b>{label}</div>")
    };
    let _ = write!(
        h,
        "<section><h2>Risk and status overview</h2><div class=\"kpis\">{}{}{}{}{}</div>\
         <p>Failing checks by risk: critical {}, high {}, medium {}, low {}.</p>",
        tile(
            "Violations",
            n(&sc, "violation") as usize,
            status_class(Status::Violation)
        ),
        tile(
            "Partial",
            n(&sc, "partial") as usize,
            status_class(Status::Partial)
        ),
        tile(
            "Compliant",
            n(&sc, "compliant") as usize,
            status_class(Status::Compliant)
        ),
        tile(
            "Not assessed",
            n(&sc, "not_assessed") as usize,
            status_class(Status::NotAssessed)
        ),
        tile("Overdue", overdue, "k-overdue"),
        n(&rc, "critical"),
        n(&rc, "high"),
        n(&rc, "medium"),
        n(&rc, "low"),
    );
    for w in &a.metadata.warnings {
        let _ = write!(h, "<p class=\"muted\">Warning: {}</p>", esc(w));
    }
    h.push_str("</section>");
    let _ = write!(
        h,
        "<div class=\"grid2\"><section>{}</section><section>{}</section></div><section>{}</section>",
        status_chart(&a.checks),
        family_chart(&a.checks),
        history_chart(a)
    );
    // Violation view.
    h.push_str("<section><h2>Violations and partial findings</h2>");
    let failing: Vec<&CheckResult> = a.checks.iter().filter(|c| c.status.is_failing()).collect();
    if failing.is_empty() {
        h.push_str("<p>No violations or partial findings.</p>");
    } else {
        let rows: Vec<(&str, Vec<(&str, String)>)> = failing
            .iter()
            .map(|c| {
                let ev: String = c
                    .evidence
                    .iter()
                    .map(|e| format!("<li>{}</li>", esc(e)))
                    .collect();
                (
                    "",
                    vec![
                        ("id", esc(&c.check_id)),
                        ("", pill(c.status)),
                        ("", risk_pill(c.risk)),
                        ("", esc(&c.observed_state)),
                        ("", esc(&c.gap)),
                        ("", format!("<ul class=\"ev\">{ev}</ul>")),
                        ("", esc(&c.mitigation)),
                        ("", esc(&c.owner)),
                        (
                            "",
                            format!(
                                "{}{}",
                                esc(c.due_date.as_deref().unwrap_or("-")),
                                if c.overdue { " <b>(overdue)</b>" } else { "" }
                            ),
                        ),
                    ],
                )
            })
            .collect();
        h.push_str(&table(
            "violations-table",
            &[
                "Check",
                "Status",
                "Risk",
                "Observed",
                "Gap",
                "Evidence",
                "Mitigation",
                "Owner",
                "Due",
            ],
            &rows,
        ));
    }
    h.push_str("</section>");
    let _ = write!(
        h,
        "<section><h2>Listening ports</h2>{}</section><section><h2>Egress</h2>{}</section>",
        socket_table(a.reports.ports.as_ref()),
        egress_table(a.reports.egress.as_ref())
    );
    // Controls map view.
    let rows: Vec<(&str, Vec<(&str, String)>)> = a
        .checks
        .iter()
        .map(|c| {
            let observed = match &c.error {
                Some(e) => format!("not assessed: {e}"),
                None => c.observed_state.clone(),
            };
            (
                "control",
                vec![
                    ("id", esc(&c.check_id)),
                    ("", esc(&c.title)),
                    ("", join(&c.iso27001)),
                    ("", join(&c.nist)),
                    ("", join(&c.sp800_53)),
                    ("", pill(c.status)),
                    ("", esc(&observed)),
                ],
            )
        })
        .collect();
    let _ = writeln!(
        h,
        "<section><h2>Controls map</h2>{}</section></main></body></html>",
        table(
            "controls-table",
            &[
                "Check",
                "Control",
                "ISO 27001:2022",
                "NIST CSF 2.0",
                "SP 800-53 r5",
                "Status",
                "Observed"
            ],
            &rows
        )
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_dangerous() {
        assert_eq!(
            esc("<a href=\"x\">'&"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
        );
        assert_eq!(esc("\u{1b}[31m"), "&#x1b;[31m");
    }
}
