//! `report.html` for the nightly job: one self-contained page (inline CSS
//! and SVG, no scripts, nothing fetched) for the compliance or campaign
//! manager's morning: kept vs suppressed per campaign, opt-outs by day and
//! by source, the keywords people used, and the review queue.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::event::{Action, Event};
use crate::scrub::Reason;
use crate::summary::{NightlySummary, RepliesSummary, WebformSummary};

/// Colours of the reasons, in [`Reason::ALL`] order, and of kept rows.
const KEPT_COLOUR: &str = "#2e7d32";
const REASON_COLOURS: [&str; 6] = ["#9e9e9e", "#795548", "#ff9800", "#c62828", "#e57373", "#90caf9"];
/// Days shown in the opt-outs-by-day chart.
const DAYS: usize = 30;
/// Keywords listed.
const TOP_KEYWORDS: usize = 10;

/// Escape text for HTML.
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn campaign_bars(summary: &NightlySummary, html: &mut String) {
    let list = &summary.campaigns;
    let width = 640.0;
    let _ = writeln!(html, "<h2>Campaigns: kept and suppressed</h2>");
    let h = 34 * list.len() + 10;
    let _ = writeln!(
        html,
        "<svg width=\"{}\" height=\"{h}\" role=\"img\" aria-label=\"kept and suppressed per campaign\">",
        width as u32 + 160
    );
    for (i, c) in list.iter().enumerate() {
        let rows = c.rows_in.max(1) as f64;
        let y = 34 * i + 5;
        let name = esc(&c.name);
        let _ = writeln!(html, "<text x=\"0\" y=\"{}\" class=\"lbl\">{name}</text>", y + 17);
        let mut x = 150.0;
        let mut parts = vec![("kept", c.kept, KEPT_COLOUR)];
        for (r, colour) in Reason::ALL.iter().zip(REASON_COLOURS) {
            parts.push((r.as_str(), c.reason(r.as_str()), colour));
        }
        for (label, n, colour) in parts.into_iter().filter(|p| p.1 > 0) {
            let w = width * n as f64 / rows;
            let _ = writeln!(
                html,
                "<rect x=\"{x:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"24\" fill=\"{colour}\"><title>{label}: {n}</title></rect>"
            );
            x += w;
        }
    }
    let _ = writeln!(html, "</svg>");
    let _ = write!(
        html,
        "<p class=\"legend\"><span style=\"background:{KEPT_COLOUR}\"></span>kept "
    );
    for (r, colour) in Reason::ALL.iter().zip(REASON_COLOURS) {
        let _ = write!(html, "<span style=\"background:{colour}\"></span>{} ", r.as_str());
    }
    let _ = writeln!(html, "</p>");
    let _ = write!(html, "<table><tr><th>campaign</th><th>rows</th><th>kept</th>");
    for r in Reason::ALL {
        let _ = write!(html, "<th>{}</th>", r.as_str());
    }
    let _ = writeln!(html, "</tr>");
    for c in list {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td>",
            esc(&c.name),
            c.rows_in,
            c.kept
        );
        for r in Reason::ALL {
            let _ = write!(html, "<td>{}</td>", c.reason(r.as_str()));
        }
        let _ = writeln!(html, "</tr>");
    }
    let _ = writeln!(html, "</table>");
}

fn by_day_chart(days: &BTreeMap<String, u64>, html: &mut String) {
    let shown: Vec<(&String, &u64)> = days
        .iter()
        .rev()
        .take(DAYS)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let max = shown.iter().map(|d| *d.1).max().unwrap_or(1).max(1) as f64;
    let _ = writeln!(
        html,
        "<h2>Opt-outs in force, by the day they were made (last {DAYS} days with any)</h2>"
    );
    let w = 40 * shown.len() + 20;
    let _ = writeln!(
        html,
        "<svg width=\"{w}\" height=\"180\" role=\"img\" aria-label=\"opt-outs by day\">"
    );
    for (i, (day, n)) in shown.iter().enumerate() {
        let h = 140.0 * **n as f64 / max;
        let x = 40 * i + 10;
        let _ = writeln!(
            html,
            "<rect x=\"{x}\" y=\"{:.1}\" width=\"32\" height=\"{h:.1}\" fill=\"#c62828\"><title>{}: {n}</title></rect>",
            150.0 - h,
            esc(day)
        );
        let _ = writeln!(
            html,
            "<text x=\"{}\" y=\"170\" class=\"tick\">{}</text>",
            x,
            esc(day.get(5..10).unwrap_or(""))
        );
    }
    let _ = writeln!(html, "</svg>");
}

fn count_table(title: &str, head: &str, rows: &[(String, u64)], html: &mut String) {
    let _ = writeln!(
        html,
        "<h2>{}</h2><table><tr><th>{}</th><th>count</th></tr>",
        esc(title),
        esc(head)
    );
    for (k, n) in rows {
        let _ = writeln!(html, "<tr><td>{}</td><td>{n}</td></tr>", esc(k));
    }
    let _ = writeln!(html, "</table>");
}

/// The page for a nightly summary and the store's current opt-outs.
pub(crate) fn render(summary: &NightlySummary, opt_outs: &[&Event]) -> String {
    let mut days: BTreeMap<String, u64> = BTreeMap::new();
    let mut sources: BTreeMap<String, u64> = BTreeMap::new();
    let mut keywords: BTreeMap<String, u64> = BTreeMap::new();
    for e in opt_outs.iter().filter(|e| e.action == Action::OptOut) {
        if let Some(t) = chrono::DateTime::from_timestamp_micros(e.at) {
            *days.entry(t.format("%Y-%m-%d").to_string()).or_default() += 1;
        }
        *sources.entry(e.source.as_str().to_string()).or_default() += 1;
        if let Some(k) = &e.keyword {
            *keywords.entry(k.to_uppercase()).or_default() += 1;
        }
    }
    let mut top: Vec<(String, u64)> = keywords.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(TOP_KEYWORDS);
    let none = RepliesSummary::default();
    let r = summary.replies.as_ref().unwrap_or(&none);
    let web = |f: fn(&WebformSummary) -> u64| summary.webform.as_ref().map_or(0, f);
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>optscrub nightly report</title><style>\
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:80em}h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em}\
table{border-collapse:collapse;margin:.5em 0;font-size:.85em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}td:first-child,th:first-child{text-align:left}\
.lbl{font-size:13px}.tick{font-size:10px}.legend span{display:inline-block;width:.9em;height:.9em;margin:0 .3em 0 .8em;vertical-align:middle}\
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em}.card b{display:block;font-size:1.6em}\
</style></head><body><h1>optscrub nightly report</h1>",
    );
    let cards = [
        ("messages read", r.messages),
        ("new opt-outs", r.new_opt_outs + web(|w| w.new_events)),
        ("new opt-ins", r.new_opt_ins),
        ("to review", r.review),
        ("rejected rows", r.rejected + web(|w| w.rejected)),
        ("opt-outs in force", summary.opt_outs_in_store),
    ];
    let _ = write!(html, "<div class=\"cards\">");
    for (label, n) in cards {
        let _ = write!(html, "<div class=\"card\"><b>{n}</b>{label}</div>");
    }
    let _ = writeln!(html, "</div>");
    if r.review > 0 {
        let _ = writeln!(
            html,
            "<p>{} replies wait in <code>review.parquet</code>: each names an opt-out keyword that did not trigger. Please read them.</p>",
            r.review
        );
    }
    campaign_bars(summary, &mut html);
    by_day_chart(&days, &mut html);
    count_table(
        "Opt-outs in force by source",
        "source",
        &sources.into_iter().collect::<Vec<_>>(),
        &mut html,
    );
    count_table(
        "Keywords people used (opt-outs in force)",
        "keyword",
        &top,
        &mut html,
    );
    html.push_str("</body></html>\n");
    html
}
