//! The HTML report in a real browser: Debian's Chromium, headless, loads `report.html` with
//! a checking script appended (a copy beside it) and a proxy that records any request that
//! leaves the machine. The page must load, every image must load, nothing may be requested
//! from the network, no table may overflow the page, number columns sit right and text
//! columns left, labels stay on one line, number columns sort numerically, and the offered
//! and achieved rates carry tooltips. A control page with each fault shows the checks can
//! fail.
//!
//! Chromium comes from `make chromium` (scripts/install-chromium.sh), which `make test` runs;
//! `SERVEBENCH_CHROMIUM` names another binary. Without one the test fails, saying so.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::common::*;

/// The checks, run on the page's load event; results land in `<pre id="servebench-checks">`.
const CHECKS: &str = r#"<script>
window.addEventListener('load', function () {
  var r = {};
  var imgs = Array.prototype.slice.call(document.images);
  r.images = imgs.length;
  r.broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                 .map(function (i) { return i.getAttribute('src'); });
  var de = document.documentElement, W = de.clientWidth;
  r.page_overflow = de.scrollWidth > W ? de.scrollWidth - W : 0;
  var tables = Array.prototype.slice.call(document.querySelectorAll('table'));
  r.tables = tables.length;
  r.wide_tables = [];
  tables.forEach(function (t, k) {
    var right = t.getBoundingClientRect().right;
    var box = t.parentElement.getBoundingClientRect().right;
    if (right > Math.min(W, box) + 1) r.wide_tables.push('table ' + k + ' (' + t.rows[0].textContent.slice(0, 40) + ') ends at ' + Math.ceil(right) + ' px of ' + Math.floor(Math.min(W, box)));
  });
  r.misaligned = [];
  r.wrapped = [];
  Array.prototype.forEach.call(document.querySelectorAll('td'), function (td) {
    var want = td.classList.contains('num') ? 'right' : 'left';
    var got = getComputedStyle(td).textAlign;
    if (!(got === want || (want === 'left' && got === 'start'))) r.misaligned.push(td.textContent + ': ' + got);
    var t = td.textContent.trim();
    if (!t || /\s/.test(t)) return;
    var range = document.createRange(); range.selectNodeContents(td);
    var tops = {};
    Array.prototype.forEach.call(range.getClientRects(), function (x) { tops[Math.round(x.top)] = 1; });
    if (Object.keys(tops).length > 1) r.wrapped.push(t);
  });
  r.numeric_columns = 0;
  r.badly_sorted = [];
  Array.prototype.forEach.call(document.querySelectorAll('th.num'), function (th) {
    r.numeric_columns++;
    th.click();
    var table = th.closest('table');
    var idx = Array.prototype.indexOf.call(th.parentElement.children, th);
    var vals = Array.prototype.map.call(table.tBodies[0].rows, function (row) {
      return parseFloat(row.cells[idx].textContent.replace(/,/g, '').replace(/^[^0-9+\-.]*/, ''));
    }).filter(function (v) { return !isNaN(v); });
    for (var k = 1; k < vals.length; k++) if (vals[k] < vals[k - 1]) { r.badly_sorted.push(th.textContent + ': ' + vals.join(' ')); break; }
  });
  r.resources = performance.getEntriesByType('resource').map(function (e) { return e.name; })
    .filter(function (u) { return !/^(file|data|blob|about):/.test(u); });
  r.tips = {};
  Array.prototype.forEach.call(document.querySelectorAll('th[title]'), function (th) { r.tips[th.textContent] = th.title; });
  var pre = document.createElement('pre'); pre.id = 'servebench-checks';
  pre.textContent = JSON.stringify(r); document.body.appendChild(pre);
});
</script>"#;

fn chromium() -> String {
    let c = std::env::var("SERVEBENCH_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let found = std::process::Command::new(&c)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "the browser test needs Chromium: `make chromium` installs Debian's (scripts/install-chromium.sh; `make test` runs it), or set SERVEBENCH_CHROMIUM to a Chromium binary; `{c} --version` did not run"
    );
    c
}

/// A proxy that answers every request with 502 and remembers its first line (the URL, or
/// CONNECT host:port): any request Chromium sends off the machine lands here.
fn recording_proxy() -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(2)));
            let mut buf = [0u8; 2048];
            let n = c.read(&mut buf).unwrap_or(0);
            let line = String::from_utf8_lossy(&buf[..n])
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            s.lock().unwrap().push(line);
            let _ = c.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (port, seen)
}

/// Chromium's own services, which it calls whatever the page (time, component and extension
/// updates, sign-in) despite the flags below: exact hosts, so that anything the page asks for
/// (fonts, scripts, images elsewhere) still counts.
const BROWSER_OWN: &[&str] = &[
    "clients2.google.com",
    "update.googleapis.com",
    "accounts.google.com",
    "clientservices.googleapis.com",
    "optimizationguide-pa.googleapis.com",
    "content-autofill.googleapis.com",
    "safebrowsingohttpgateway.googleapis.com",
    "redirector.gvt1.com",
];

/// The host a proxied request line names: `CONNECT host:443 ...` or `GET http://host/... `.
fn host_of(line: &str) -> String {
    let target = line.split(' ').nth(1).unwrap_or("");
    let t = target.trim_start_matches("http://").trim_start_matches("https://");
    t.split(['/', ':']).next().unwrap_or("").to_string()
}

/// Load `page` (a copy of it with the checks appended) in headless Chromium; return the
/// checks' results and the requests that tried to leave the machine (the browser's own
/// service calls left out; the page's resource list is checked besides).
fn check_page(page: &Path) -> (serde_json::Value, Vec<String>) {
    let html = std::fs::read_to_string(page).unwrap();
    let checked = page.with_file_name("servebench-browser-check.html");
    let with = match html.rfind("</body>") {
        Some(k) => format!("{}{CHECKS}{}", &html[..k], &html[k..]),
        None => format!("{html}{CHECKS}"),
    };
    std::fs::write(&checked, with).unwrap();
    let (port, seen) = recording_proxy();
    let profile = tmp();
    let out = std::process::Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--window-size=1280,900",
            "--virtual-time-budget=15000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--proxy-server=http://127.0.0.1:{port}"))
        .arg("--proxy-bypass-list=<-loopback>")
        .arg(format!("file://{}", checked.canonicalize().unwrap().display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout).to_string();
    let start = dom.find("<pre id=\"servebench-checks\">").unwrap_or_else(|| {
        panic!(
            "the page did not load or its checks did not run (status {:?}); stderr: {}\nDOM: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            &dom[..dom.len().min(2000)]
        )
    });
    let json = &dom[start + "<pre id=\"servebench-checks\">".len()..];
    let json = &json[..json.find("</pre>").unwrap()];
    let json = json
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let seen = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|l| !BROWSER_OWN.contains(&host_of(l).as_str()))
        .cloned()
        .collect();
    (v, seen)
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_str().unwrap_or_default().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn report_html_in_a_real_browser() {
    let d = tmp();
    let paths = crate::chart::demo_like_requests(d.path());
    let out = d.path().join("report");
    ok(cmd("report")
        .args(&paths)
        .args(["--slo", "ttft=500ms,tpot=50ms", "--bootstrap", "200", "-o"])
        .arg(&out));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let charts = md.matches("](charts/").count();
    assert!(charts >= 20, "{charts} charts in the report");
    let (r, net) = check_page(&out.join("report.html"));
    assert!(net.is_empty(), "the report requested from the network: {net:?}");
    assert!(
        strings(&r["resources"]).is_empty(),
        "the page fetched: {}",
        r["resources"]
    );
    assert_eq!(r["images"].as_u64(), Some(charts as u64), "{r}");
    assert!(
        strings(&r["broken"]).is_empty(),
        "images that did not load: {}",
        r["broken"]
    );
    assert_eq!(r["page_overflow"].as_u64(), Some(0), "the page scrolls sideways: {r}");
    assert!(r["tables"].as_u64().unwrap() >= 4, "{r}");
    assert!(strings(&r["wide_tables"]).is_empty(), "{}", r["wide_tables"]);
    assert!(strings(&r["misaligned"]).is_empty(), "{}", r["misaligned"]);
    assert!(
        strings(&r["wrapped"]).is_empty(),
        "labels broken across lines: {}",
        r["wrapped"]
    );
    assert!(r["numeric_columns"].as_u64().unwrap() >= 10, "{r}");
    assert!(strings(&r["badly_sorted"]).is_empty(), "{}", r["badly_sorted"]);
    let tips = &r["tips"];
    for h in ["rate req/s", "req/s", "goodput req/s", "load %"] {
        assert!(
            tips[h].as_str().is_some_and(|t| t.len() > 20),
            "no tooltip on {h}: {tips}"
        );
    }
    assert!(tips["rate req/s"].as_str().unwrap().contains("Offered"), "{tips}");
    assert!(tips["req/s"].as_str().unwrap().contains("Achieved"), "{tips}");
}

/// The checks catch each fault: an image from the network (requested and broken), a missing
/// image, a table wider than the page, a label broken at its hyphen, a number column sorted
/// as text and a number left-aligned.
#[test]
fn report_browser_checks_catch_each_fault() {
    let d = tmp();
    let wide: String = (0..60).map(|i| format!("<td>cell{i}-wide-content</td>")).collect();
    let page = format!(
        "<!doctype html><html><body style=\"max-width:600px\">\
         <img src=\"http://example.invalid/x.png\"><img src=\"missing.png\">\
         <table><tr>{wide}</tr></table>\
         <table><thead><tr><th class=\"txt\">label</th><th class=\"num\">seed</th></tr></thead>\
         <tbody><tr><td class=\"txt\" style=\"width:40px;display:inline-block\">mock-b-fp16</td><td class=\"num\" style=\"text-align:left\">1</td></tr>\
         <tr><td class=\"txt\">a</td><td class=\"num\">10</td></tr><tr><td class=\"txt\">b</td><td class=\"num\">7</td></tr></tbody></table>\
         </body></html>"
    );
    let p = d.path().join("bad.html");
    std::fs::write(&p, page).unwrap();
    let (r, net) = check_page(&p);
    assert!(net.iter().any(|l| l.contains("example.invalid")), "{net:?}");
    assert!(
        strings(&r["resources"]).iter().any(|u| u.contains("example.invalid")),
        "{r}"
    );
    assert_eq!(strings(&r["broken"]).len(), 2, "{r}");
    assert!(!strings(&r["wide_tables"]).is_empty(), "{r}");
    assert!(!strings(&r["wrapped"]).is_empty(), "{r}");
    assert!(!strings(&r["misaligned"]).is_empty(), "{r}");
    // no sorting script on this page: clicking leaves 1, 10, 7
    assert!(!strings(&r["badly_sorted"]).is_empty(), "{r}");
}
