//! The compliance dashboard: one self-contained HTML file with inline CSS and inline SVG, no
//! script and nothing loaded from the network (a CSP meta tag forbids it). Every value that
//! comes from the host or a config file is HTML-escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::model::{
    num_or_dash, or_dash, risk_counts, status_counts, Assessment, CheckResult, NetReport, NetScan,
    Risk, Status,
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

fn color(s: Status) -> &'static str {
    match s {
        Status::Compliant => "#1a7f37",
        Status::Partial => "#b7791f",
        Status::Violation => "#c62828",
        Status::NotAssessed => "#6b7280",
    }
}

fn risk_color(r: Risk) -> &'static str {
    match r {
        Risk::Critical => "#7f1d1d",
        Risk::High => "#c62828",
        Risk::Medium => "#b7791f",
        Risk::Low => "#2563eb",
    }
}

const CSS: &str = r#"
:root{--bg:#f6f7f9;--fg:#111827;--card:#fff;--mut:#6b7280;--line:#e5e7eb}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--fg)}
header{padding:16px 20px;background:#111827;color:#fff}
header h1{margin:0 0 4px;font-size:20px}
header p{margin:0;color:#d1d5db;font-size:13px}
main{padding:16px;max-width:1200px;margin:0 auto}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px;margin:0 0 16px}
h2{font-size:16px;margin:0 0 10px}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(130px,1fr));gap:10px}
.kpi{border-radius:8px;padding:10px 12px;color:#fff}
.kpi b{display:block;font-size:26px;line-height:1.1}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:16px}
@media (max-width:820px){.grid2{grid-template-columns:1fr}main{padding:8px}header h1{font-size:18px}}
svg{width:100%;height:auto;display:block}
.chartbox{overflow-x:auto;-webkit-overflow-scrolling:touch}
svg.chart{min-width:460px}
svg text{font:11px system-ui,sans-serif;fill:#374151}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f3f4f6;position:sticky;top:0}
td.id{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px;white-space:nowrap}
td.mono,span.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px;word-break:break-all}
.pill{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px;white-space:nowrap}
.muted{color:var(--mut)}
.legend span{display:inline-block;margin-right:12px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:middle}
ul.ev{margin:0;padding-left:16px}
"#;

fn pill(s: Status) -> String {
    format!(
        "<span class=\"pill\" style=\"background:{}\">{}</span>",
        color(s),
        s.as_str()
    )
}

fn risk_pill(r: Risk) -> String {
    format!(
        "<span class=\"pill\" style=\"background:{}\">{}</span>",
        risk_color(r),
        r.as_str()
    )
}

/// Chart 1: one mark per check, coloured by status.
fn status_chart(checks: &[CheckResult]) -> String {
    let row = 18;
    let label_w = 260;
    let h = checks.len() * row + 8;
    let mut s = format!(
        "<svg class=\"chart\" id=\"status-chart\" viewBox=\"0 0 600 {h}\" role=\"img\" aria-label=\"Status per check\">"
    );
    for (i, c) in checks.iter().enumerate() {
        let y = 4 + i * row;
        let w = match c.status {
            Status::Violation => 230,
            Status::Partial => 170,
            Status::Compliant => 110,
            Status::NotAssessed => 60,
        };
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect class=\"mark\" data-check=\"{}\" data-status=\"{}\" x=\"{label_w}\" y=\"{y}\" width=\"{w}\" height=\"{}\" rx=\"3\" fill=\"{}\"><title>{}: {}</title></rect>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            label_w - 6,
            y + 12,
            esc(&c.check_id),
            esc(&c.check_id),
            c.status.as_str(),
            row - 4,
            color(c.status),
            esc(&c.check_id),
            c.status.as_str(),
            label_w + w + 6,
            y + 12,
            c.status.as_str()
        );
    }
    s.push_str("</svg>");
    s
}

/// Chart 2: summed risk weight of failing checks per framework control.
fn risk_chart(checks: &[CheckResult]) -> String {
    let mut by: BTreeMap<String, (u32, Risk)> = BTreeMap::new();
    for c in checks.iter().filter(|c| c.status.is_failing()) {
        let ids = c
            .iso27001
            .iter()
            .map(|i| format!("ISO {i}"))
            .chain(c.nist.iter().map(|i| format!("CSF {i}")))
            .chain(c.sp800_53.iter().map(|i| format!("800-53 {i}")));
        for id in ids {
            let e = by.entry(id).or_insert((0, Risk::Low));
            e.0 += c.risk.weight();
            e.1 = e.1.max(c.risk);
        }
    }
    if by.is_empty() {
        return "<p class=\"muted\" id=\"risk-chart\">No failing checks: no risk to chart.</p>"
            .into();
    }
    let mut rows: Vec<(String, u32, Risk)> = by.into_iter().map(|(k, (w, r))| (k, w, r)).collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    // The 24 heaviest controls; the full map is in the controls table below.
    let hidden = rows.len().saturating_sub(24);
    rows.truncate(24);
    let max = rows.iter().map(|r| r.1).max().unwrap_or(1).max(1);
    let row = 16;
    let label_w = 120;
    let h = rows.len() * row + 8;
    let mut s = format!(
        "<svg class=\"chart\" id=\"risk-chart\" viewBox=\"0 0 600 {h}\" role=\"img\" aria-label=\"Risk per framework control\">"
    );
    for (i, (id, w, r)) in rows.iter().enumerate() {
        let y = 4 + i * row;
        let bw = 40 + (*w as usize * 400) / max as usize;
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect class=\"riskbar\" data-control=\"{}\" x=\"{label_w}\" y=\"{y}\" width=\"{bw}\" height=\"{}\" rx=\"2\" fill=\"{}\"><title>{}: weight {w}, highest {}</title></rect>\
             <text x=\"{}\" y=\"{}\">{w}</text>",
            label_w - 6,
            y + 11,
            esc(id),
            esc(id),
            row - 4,
            risk_color(*r),
            esc(id),
            r.as_str(),
            label_w + bw + 4,
            y + 11
        );
    }
    s.push_str("</svg>");
    if hidden > 0 {
        let _ = write!(
            s,
            "<p class=\"muted\">{hidden} lighter control(s) not drawn; see the controls map.</p>"
        );
    }
    s
}

/// Chart 3: violations and partial checks (stacked bars) and scan findings (line) per run.
fn history_chart(a: &Assessment) -> String {
    let runs = &a.history;
    if runs.is_empty() {
        return "<p class=\"muted\" id=\"history-chart\">No runs recorded yet.</p>".into();
    }
    let w = 1000usize;
    let h = 220usize;
    let base = h - 24;
    let max = runs
        .iter()
        .map(|r| (r.violation + r.partial).max(r.port_findings + r.egress_findings))
        .max()
        .unwrap_or(1)
        .max(1) as usize;
    let slot = (w - 40) / runs.len().max(1);
    let bw = (slot * 6 / 10).max(2);
    let scale = |v: u32| (v as usize * (base - 10)) / max;
    let mut s = format!(
        "<svg class=\"chart\" id=\"history-chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"Findings over recent runs\">\
         <line x1=\"30\" y1=\"{base}\" x2=\"{w}\" y2=\"{base}\" stroke=\"#9ca3af\"/>\
         <text x=\"2\" y=\"14\">{max}</text><text x=\"2\" y=\"{base}\">0</text>"
    );
    let mut pts = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        let x = 34 + i * slot;
        let hv = scale(r.violation);
        let hp = scale(r.partial);
        let _ = write!(
            s,
            "<rect class=\"run\" x=\"{x}\" y=\"{}\" width=\"{bw}\" height=\"{hv}\" fill=\"{}\"><title>{}: {} violation(s)</title></rect>\
             <rect x=\"{x}\" y=\"{}\" width=\"{bw}\" height=\"{hp}\" fill=\"{}\"><title>{}: {} partial</title></rect>",
            base - hv,
            color(Status::Violation),
            esc(&r.at),
            r.violation,
            base - hv - hp,
            color(Status::Partial),
            esc(&r.at),
            r.partial
        );
        pts.push(format!(
            "{},{}",
            x + bw / 2,
            base - scale(r.port_findings + r.egress_findings)
        ));
    }
    let _ = write!(
        s,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#2563eb\" stroke-width=\"2\"/>",
        pts.join(" ")
    );
    if let (Some(first), Some(last)) = (runs.first(), runs.last()) {
        let _ = write!(
            s,
            "<text x=\"34\" y=\"{}\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            h - 6,
            esc(&first.at),
            w - 4,
            h - 6,
            esc(&last.at)
        );
    }
    s.push_str("</svg><p class=\"legend\"><span><i style=\"background:#c62828\"></i>violations</span><span><i style=\"background:#b7791f\"></i>partial</span><span><i style=\"background:#2563eb\"></i>port + egress findings</span></p>");
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
    let rows = &scan.listening_services;
    let mut s = format!(
        "<p class=\"muted\">{} listening socket(s), method {}.</p><div class=\"scroll\"><table id=\"ports-table\"><thead><tr><th>Proto</th><th>Address</th><th>Port</th><th>PID</th><th>Process</th><th>Executable</th><th>UID</th><th>Netns</th></tr></thead><tbody>",
        rows.len(),
        esc(scan_method(scan))
    );
    for r in rows {
        let _ = write!(
            s,
            "<tr class=\"sock\"><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(or_dash(r.protocol.as_deref())),
            esc(or_dash(r.address.as_deref())),
            num_or_dash(r.port),
            num_or_dash(r.pid),
            esc(or_dash(r.comm.as_deref())),
            esc(or_dash(r.path.as_deref())),
            esc(or_dash(r.uid.as_deref())),
            num_or_dash(r.net_namespace),
        );
    }
    s.push_str("</tbody></table></div>");
    s
}

fn egress_table(r: Option<&NetReport>) -> String {
    let scan = match table_scan(r, "Egress") {
        Ok(s) => s,
        Err(p) => return p,
    };
    let rows = &scan.connections;
    let mut s = format!(
        "<p class=\"muted\">{} outbound connection(s), method {}. {}</p><div class=\"scroll\"><table id=\"egress-table\"><thead><tr><th>Proto</th><th>Local</th><th>Remote</th><th>State</th><th>PID</th><th>Process</th><th>Executable</th><th>Allowed by rule</th></tr></thead><tbody>",
        rows.len(),
        esc(scan_method(scan)),
        esc(&scan.blind_spots.join("; "))
    );
    for r in rows {
        let _ = write!(
            s,
            "<tr class=\"conn\"><td>{}</td><td class=\"mono\">{}:{}</td><td class=\"mono\">{}:{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
            esc(or_dash(r.protocol.as_deref())),
            esc(or_dash(r.address.as_deref())),
            num_or_dash(r.port),
            esc(or_dash(r.remote_address.as_deref())),
            num_or_dash(r.remote_port),
            esc(or_dash(r.state.as_deref())),
            num_or_dash(r.pid),
            esc(or_dash(r.comm.as_deref())),
            esc(or_dash(r.path.as_deref())),
            num_or_dash(r.allowed_by),
        );
    }
    s.push_str("</tbody></table></div>");
    s
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
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\
         <title>Compliance Dashboard - {sys}</title><style>{CSS}</style></head><body>\
         <header><h1>ISO 27001 / NIST Compliance Dashboard</h1>\
         <p>System: {sys} &middot; Assessed: {at} &middot; {fw}</p></header><main>",
        sys = esc(&a.metadata.system),
        at = esc(&a.metadata.generated_at_utc),
        fw = esc(&a.metadata.frameworks.join(" · ")),
    );
    let tile = |label: &str, v: usize, bg: &str| {
        format!("<div class=\"kpi\" style=\"background:{bg}\"><b>{v}</b>{label}</div>")
    };
    let _ = write!(
        h,
        "<section><h2>Risk and status overview</h2><div class=\"kpis\">{}{}{}{}{}</div>\
         <p>Failing checks by risk: critical {}, high {}, medium {}, low {}.</p>",
        tile(
            "Violations",
            n(&sc, "violation") as usize,
            color(Status::Violation)
        ),
        tile(
            "Partial",
            n(&sc, "partial") as usize,
            color(Status::Partial)
        ),
        tile(
            "Compliant",
            n(&sc, "compliant") as usize,
            color(Status::Compliant)
        ),
        tile(
            "Not assessed",
            n(&sc, "not_assessed") as usize,
            color(Status::NotAssessed)
        ),
        tile("Overdue", overdue, "#374151"),
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
        "<div class=\"grid2\"><section><h2>Status per check</h2><div class=\"chartbox\">{}</div></section>\
         <section><h2>Risk per framework control</h2><div class=\"chartbox\">{}</div></section></div>\
         <section><h2>Findings over recent runs</h2><div class=\"chartbox\">{}</div></section>",
        status_chart(&a.checks),
        risk_chart(&a.checks),
        history_chart(a)
    );
    // Violation view.
    h.push_str("<section><h2>Violations and partial findings</h2>");
    let failing: Vec<&CheckResult> = a.checks.iter().filter(|c| c.status.is_failing()).collect();
    if failing.is_empty() {
        h.push_str("<p>No violations or partial findings.</p>");
    } else {
        h.push_str("<div class=\"scroll\"><table id=\"violations-table\"><thead><tr><th>Check</th><th>Status</th><th>Risk</th><th>Observed</th><th>Gap</th><th>Evidence</th><th>Mitigation</th><th>Owner</th><th>Due</th></tr></thead><tbody>");
        for c in &failing {
            let ev: String = c
                .evidence
                .iter()
                .map(|e| format!("<li>{}</li>", esc(e)))
                .collect();
            let _ = write!(
                h,
                "<tr><td class=\"id\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><ul class=\"ev\">{}</ul></td><td>{}</td><td>{}</td><td>{}{}</td></tr>",
                esc(&c.check_id),
                pill(c.status),
                risk_pill(c.risk),
                esc(&c.observed_state),
                esc(&c.gap),
                ev,
                esc(&c.mitigation),
                esc(&c.owner),
                esc(c.due_date.as_deref().unwrap_or("-")),
                if c.overdue { " <b>(overdue)</b>" } else { "" }
            );
        }
        h.push_str("</tbody></table></div>");
    }
    h.push_str("</section>");
    let _ = write!(
        h,
        "<section><h2>Listening ports</h2>{}</section><section><h2>Egress</h2>{}</section>",
        socket_table(a.reports.ports.as_ref()),
        egress_table(a.reports.egress.as_ref())
    );
    // Controls map view.
    h.push_str("<section><h2>Controls map</h2><div class=\"scroll\"><table id=\"controls-table\"><thead><tr><th>Check</th><th>Control</th><th>ISO 27001:2022</th><th>NIST CSF 2.0</th><th>SP 800-53 r5</th><th>Status</th><th>Observed</th></tr></thead><tbody>");
    for c in &a.checks {
        let observed = match &c.error {
            Some(e) => format!("not assessed: {e}"),
            None => c.observed_state.clone(),
        };
        let _ = write!(
            h,
            "<tr class=\"control\"><td class=\"id\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.check_id),
            esc(&c.title),
            join(&c.iso27001),
            join(&c.nist),
            join(&c.sp800_53),
            pill(c.status),
            esc(&observed)
        );
    }
    h.push_str("</tbody></table></div></section></main></body></html>\n");
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
