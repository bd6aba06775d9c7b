use crate::common::*;

#[test]
fn charts_from_a_summary() {
    let m = Mock::start(&["--ttft-ms", "5", "--itl-ms", "1"]);
    let d = tmp();
    for c in ["1", "4"] {
        let t = trace(
            d.path(),
            &format!("t{c}.parquet"),
            &["batch", "--count", "8", "--output-len", "8"],
        );
        ok(cmd("replay")
            .arg(&t)
            .args(["--url", &m.url, "--concurrency", c, "--label", "m", "--quiet", "-o"])
            .arg(d.path().join(format!("r{c}.parquet"))));
    }
    let s = d.path().join("s.parquet");
    ok(cmd("agg")
        .arg(d.path().join("r1.parquet"))
        .arg(d.path().join("r4.parquet"))
        .arg("-o")
        .arg(&s));
    let cd = d.path().join("charts");
    ok(cmd("chart").arg(&s).arg("-o").arg(&cd));
    for f in [
        "throughput-vs-concurrency.png",
        "throughput-vs-concurrency.svg",
        "ttft-p50-vs-concurrency.png",
    ] {
        let p = cd.join(f);
        let bytes = std::fs::read(&p).unwrap_or_else(|_| panic!("{f} missing"));
        assert!(bytes.len() > 5000, "{f} too small");
    }
    let png = std::fs::read(cd.join("throughput-vs-concurrency.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let svg = std::fs::read_to_string(cd.join("throughput-vs-concurrency.svg")).unwrap();
    assert!(svg.contains("Output throughput") && svg.contains("concurrent users"));
    // a requests file is not a summary
    let o = run(cmd("chart").arg(d.path().join("r1.parquet")).arg("-o").arg(&cd));
    assert_eq!(o.status.code(), Some(2));
}

/// An open-loop run whose trace declared no rate (pyarrow, DuckDB) has a summary with neither
/// concurrency nor rate_rps: chart draws what such a summary supports (percentiles per group,
/// and distributions from the requests) instead of refusing.
#[test]
fn charts_from_a_summary_without_a_load_level() {
    use servebench::schema::{Record, Rows, RunLabels, Status, tpot};
    use servebench::trace::TraceRow;
    let d = tmp();
    let t0 = 1_700_000_000_000_000i64;
    let recs: Vec<Record> = (0..40u64)
        .map(|i| {
            let mut r = Record::not_sent(&TraceRow::new(i, 0.0, 100, 4), Some(t0), "");
            let ttft = 20.0 + (i * 7 % 13) as f64;
            r.status = Status::Ok;
            r.error = None;
            r.sent_at_us = Some(t0 + i as i64 * 50_000);
            r.sched_lag_ms = Some(0.0);
            r.chunk_times_ms = (0..4).map(|k| ttft + 5.0 * k as f64).collect();
            r.ttft_ms = Some(ttft);
            r.e2e_ms = Some(ttft + 15.0);
            r.tpot_ms = tpot(ttft, ttft + 15.0, 4);
            r.done_at_us = r.sent_at_us.map(|s| s + ((ttft + 15.0) * 1000.0) as i64);
            r.output_tokens = 4;
            r
        })
        .collect();
    let labels = RunLabels {
        label: "open".into(),
        run_id: "r".into(),
        api: "chat".into(),
        ..Default::default()
    };
    let b = Record::encode(&recs, &labels);
    let r = d.path().join("r.parquet");
    let meta = servebench::meta::Meta::for_output(&servebench::schema::REQUESTS, false);
    servebench::io::write_all(Some(&r), None, b.schema(), &meta, &[b]).unwrap();
    let s = d.path().join("s.parquet");
    ok(cmd("agg").arg(&r).arg("-o").arg(&s));
    assert_eq!(column_f64(&s, "concurrency"), vec![None]);
    assert_eq!(column_f64(&s, "rate_rps"), vec![None]);
    let cd = d.path().join("charts");
    let o = run(cmd("chart").arg(&s).arg("-o").arg(&cd));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for f in ["percentiles-ttft.png", "percentiles-tpot.svg", "percentiles-e2e.png"] {
        let bytes = std::fs::read(cd.join(f)).unwrap_or_else(|_| panic!("{f} missing"));
        assert!(bytes.len() > 2000, "{f} too small");
    }
    let svg = std::fs::read_to_string(cd.join("percentiles-ttft.svg")).unwrap();
    assert!(
        svg.contains("Percentiles of time to first token") && svg.lines().any(|l| l.trim() == "open"),
        "{svg}"
    );
    // with the requests: box plots and CDFs of all requests
    ok(cmd("chart").arg(&s).arg("--requests").arg(&r).arg("-o").arg(&cd));
    for f in ["box-ttft-all.png", "cdf-ttft-all.png"] {
        assert!(cd.join(f).exists(), "{f} missing");
    }
}

// ---- charts that read right: every figure's geometry, as drawn ----

use servebench::chart::{self, Geometry, PlotGeom, kinds};

/// Requests files like the demo's: two engines by two quantizations, a closed-loop sweep of
/// 1, 10, 50 and 100 users and one open-loop rate (25 req/s), run one after another. Latency
/// grows with load; mock-b-fp8 is fastest at low load and collapses at 100 users.
pub fn demo_like_requests(dir: &std::path::Path) -> Vec<String> {
    use servebench::schema::{Record, Rows, RunLabels, Status, tpot};
    use servebench::trace::TraceRow;
    let mut paths = Vec::new();
    let mut t = 1_700_000_000_000_000i64;
    for (li, (engine, quant)) in [("mock", "fp16"), ("mock", "fp8"), ("mock-b", "fp16"), ("mock-b", "fp8")]
        .into_iter()
        .enumerate()
    {
        let label = format!("{engine}-{quant}");
        for (c, rate) in [
            (Some(1u32), None),
            (Some(10), None),
            (Some(50), None),
            (Some(100), None),
            (None, Some(25.0)),
        ] {
            let n = 40u64;
            let load = c.map_or(25.0, f64::from);
            let speed = [1.4, 1.0, 1.2, 0.7][li];
            let cliff = if li >= 2 && c == Some(100) { 6.0 } else { 1.0 };
            let recs: Vec<Record> = (0..n)
                .map(|i| {
                    let mut r = Record::not_sent(&TraceRow::new(i, 0.0, 100, 8), Some(t), "");
                    let ttft = speed * cliff * (4.0 + load * 1.5) * (1.0 + (i * 7 % 13) as f64 / 20.0);
                    let itl = speed * (3.0 + load / 12.0);
                    r.status = Status::Ok;
                    r.error = None;
                    r.sent_at_us = Some(t + i as i64 * 50_000);
                    r.sched_lag_ms = Some(0.0);
                    r.chunk_times_ms = (0..8).map(|k| ttft + itl * k as f64).collect();
                    r.ttft_ms = Some(ttft);
                    r.e2e_ms = Some(ttft + 7.0 * itl);
                    r.tpot_ms = tpot(ttft, ttft + 7.0 * itl, 8);
                    r.done_at_us = r.sent_at_us.map(|s| s + ((ttft + 7.0 * itl) * 1000.0) as i64);
                    r.output_tokens = 8;
                    r
                })
                .collect();
            let labels = RunLabels {
                label: label.clone(),
                run_id: format!("{label}-{load}"),
                engine: Some(engine.into()),
                quant: Some(quant.into()),
                api: "chat".into(),
                concurrency: c,
                rate_rps: rate,
                ..Default::default()
            };
            let b = Record::encode(&recs, &labels);
            let p = dir.join(format!("{label}-{load}.parquet"));
            let meta = servebench::meta::Meta::for_output(&servebench::schema::REQUESTS, false);
            servebench::io::write_all(Some(&p), None, b.schema(), &meta, &[b]).unwrap();
            paths.push(p.display().to_string());
            t += 4_000_000;
        }
        t += 2_000_000;
    }
    paths
}

/// Every chart `report` draws for demo-like data, with the geometry of each.
fn demo_like_charts(dir: &std::path::Path, slo: servebench::analysis::Slo) -> Vec<(String, Geometry)> {
    use servebench::analysis::{self, Monitors, Options};
    let paths = demo_like_requests(dir);
    let o = Options {
        slo,
        bootstrap: 200,
        ..Options::default()
    };
    let an = analysis::analyse(&paths, &o, &Monitors::default()).unwrap();
    let mut rows = an.rows.clone();
    for r in &mut rows {
        r.gpu_mem_idle_mib = Some(1000.0);
        r.gpu_mem_peak_mib = Some(70600.0);
    }
    let runs = kinds::runs_of(&paths).unwrap();
    let t0 = runs[0].start_us;
    let t1 = runs.last().unwrap().end_us;
    let gpu: Vec<servebench::gpu::window::GpuSample> = (0..)
        .map(|k| t0 + k * 200_000)
        .take_while(|t| *t <= t1)
        .map(|t_us| servebench::gpu::window::GpuSample {
            t_us,
            gpu: 0,
            mem_used_mib: Some(70600.0),
            util_pct: Some(50.0 + 40.0 * ((t_us / 1000) as f64 / 3e3).sin()),
            power_w: Some(200.0),
            energy_j: None,
        })
        .collect();
    let cd = dir.join("charts");
    std::fs::create_dir_all(&cd).unwrap();
    let ctx = "demo-like data for the chart checks; a long subtitle, as the demo's, that a chart must wrap rather than cut at the canvas edge";
    let (res, got) = chart::recording(|| -> Result<(), chart::ChartError> {
        kinds::load_curves(&rows, &cd, ctx)?;
        kinds::pareto(&rows, &cd, ctx, 1.0)?;
        kinds::heatmaps(&rows, &cd, ctx, &o.slo)?;
        kinds::gpu_memory(&rows, &cd, ctx, true)?;
        kinds::percentiles(&rows, &cd, ctx)?;
        kinds::distributions(&an.groups, &cd, ctx)?;
        kinds::gpu_timeline(&gpu, &runs, &cd, ctx, true)?;
        Ok(())
    });
    res.unwrap();
    got.into_iter()
        .map(|(p, g)| (p.file_name().unwrap().to_string_lossy().to_string(), g))
        .collect()
}

fn named<'a>(charts: &'a [(String, Geometry)], name: &str) -> &'a Geometry {
    &charts
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no chart {name}: {:?}", charts.iter().map(|c| &c.0).collect::<Vec<_>>()))
        .1
}

/// No text of any chart extends past the canvas (measured with the embedded DejaVu, as
/// drawn): a subtitle cut at the edge, as the box plot's "whiskers p5-p9", fails here.
#[test]
fn chart_text_stays_on_the_canvas() {
    let d = tmp();
    let charts = demo_like_charts(d.path(), "ttft=500ms,tpot=50ms".parse().unwrap());
    assert!(charts.len() >= 30, "{}", charts.len());
    for (name, g) in &charts {
        let (w, h) = (g.size.0 as i32, g.size.1 as i32);
        for t in &g.texts {
            let r = t.rect;
            assert!(
                r.x0 >= 0 && r.y0 >= 0 && r.x1 <= w && r.y1 <= h,
                "{name}: {:?} at {r:?} leaves the {w}x{h} canvas",
                t.text
            );
        }
    }
    // the box plot's legend line is whole (wrapped, not cut)
    let b = named(&charts, "box-ttft-concurrency");
    let all: String = b.texts.iter().map(|t| t.text.as_str()).collect::<Vec<_>>().join(" ");
    assert!(all.contains("dot p99"), "{all}");
}

/// Legends draw exactly their series' style (line width, dashes, marker) and cover no plotted
/// point, line or bar, on every chart.
#[test]
fn chart_legends_match_their_series_and_cover_no_data() {
    let d = tmp();
    let charts = demo_like_charts(d.path(), "ttft=500ms,tpot=50ms".parse().unwrap());
    let mut legends = 0;
    for (name, g) in &charts {
        for p in &g.plots {
            let Some(l) = p.legend else { continue };
            legends += 1;
            // 6 pixels: a marker's radius around its point
            assert!(!p.hits(&l, 6), "{name} / {}: legend {l:?} covers data", p.title);
            if p.kind == "line" {
                assert_eq!(
                    p.legend_entries, p.series,
                    "{name} / {}: legend style != series style",
                    p.title
                );
            }
        }
    }
    assert!(legends >= 10, "{legends}");
    // the CDFs tell fp16 (solid) from fp8 (dashed) in the legend as on the plot
    let cdf = named(&charts, "cdf-ttft-concurrency");
    let e = &cdf.plots[0].legend_entries;
    let fp8 = e.iter().find(|s| s.name == "mock-fp8").unwrap();
    let fp16 = e.iter().find(|s| s.name == "mock-fp16").unwrap();
    assert!(fp8.dashed && !fp16.dashed, "{e:?}");
}

/// A legend moves away from data wherever the data are: a point in every corner but one
/// puts it in that corner; points in all four put it outside the plot.
#[test]
fn chart_legend_finds_the_empty_corner_or_leaves_the_plot() {
    use servebench::chart::{LinePlot, Marker, Pt, Series};
    let plot = |pts: &[(f64, f64)]| {
        let mut p = LinePlot::new("t", "x", "y");
        p.series = vec![Series {
            name: "a".into(),
            color: plotters::style::RGBColor(0, 0, 0),
            marker: Marker::Circle,
            dashed: false,
            points: pts.iter().map(|(x, y)| Pt::at(*x, *y)).collect(),
        }];
        p.y_range = Some((0.0, 10.0));
        chart::inspect(&p).unwrap().plots.remove(0)
    };
    let check = |g: &PlotGeom| {
        let l = g.legend.unwrap();
        assert!(!g.hits(&l, 6), "{l:?} covers {:?}", g.points);
        l
    };
    // points at the top left, top right and bottom left: the legend goes bottom right
    let g = plot(&[(0.0, 9.9), (0.0, 0.1), (10.0, 9.9), (5.0, 5.0)]);
    let l = check(&g);
    let a = g.area.unwrap();
    assert!(l.x0 > (a.x0 + a.x1) / 2 && l.y0 > (a.y0 + a.y1) / 2, "{l:?} in {a:?}");
    // every corner taken: beside the plot, outside its area
    let g = plot(&[(0.0, 9.9), (0.0, 0.1), (10.0, 9.9), (10.0, 0.1), (5.0, 5.0)]);
    let l = check(&g);
    let a = g.area.unwrap();
    assert!(!l.overlaps(&a), "{l:?} inside the plot {a:?}");
}

/// Load axes: concurrency on a log scale, ticks and labels only at the measured levels; a
/// load with one level measured (the rate here) is drawn as bars, never as a line.
#[test]
fn chart_load_axes_show_measured_levels_and_one_level_is_bars() {
    let d = tmp();
    let charts = demo_like_charts(d.path(), Default::default());
    let mut vs = 0;
    for (name, g) in charts.iter().filter(|(n, _)| n.contains("-vs-")) {
        vs += 1;
        let p = &g.plots[0];
        if name.ends_with("-vs-rate") {
            assert_eq!(p.kind, "bars", "{name}: one rate measured, drawn as {}", p.kind);
            assert_eq!(p.boxes.len(), 4, "{name}: a bar per label");
            continue;
        }
        assert_eq!(p.kind, "line", "{name}");
        assert!(p.x_values.len() >= 2, "{name}: a line through one x");
        assert!(p.log_x, "{name}: 1..100 users on a linear axis");
        let ticks: Vec<f64> = p.x_ticks.iter().map(|t| t.0).collect();
        assert_eq!(ticks, vec![1.0, 10.0, 50.0, 100.0], "{name}");
        let px: Vec<i32> = p.x_ticks.iter().map(|t| t.1).collect();
        // log spacing: 1 -> 10 is much wider than 50 -> 100
        assert!(px[1] - px[0] > 2 * (px[3] - px[2]), "{name}: {px:?}");
        // tick labels are exactly the measured levels
        let labels: Vec<&str> = g
            .texts
            .iter()
            .filter(|t| t.rect.y0 > p.area.unwrap().y1 && t.rect.y0 < p.area.unwrap().y1 + 30)
            .map(|t| t.text.as_str())
            .collect();
        assert_eq!(labels, vec!["1", "10", "50", "100"], "{name}");
    }
    // 6 charts per load without an SLO (goodput needs one)
    assert_eq!(vs, 12);
}

/// With an SLO, heat-map colours say how a cell stands against it (12.7 ms TPOT under a
/// 50 ms SLO is green, not red) and the key says so; without one, the key says colours are
/// relative.
#[test]
fn chart_heat_maps_colour_against_the_slo() {
    use servebench::chart::figures::Heatmap;
    let h = |slo: Option<f64>| Heatmap {
        title: "t".into(),
        subtitle: String::new(),
        x_label: "x".into(),
        x_labels: vec!["1".into(), "100".into()],
        y_labels: vec!["a".into()],
        values: vec![vec![Some(3.2), Some(12.7)]],
        lower_is_better: true,
        unit: "ms".into(),
        slo,
    };
    let green = |c: plotters::style::RGBColor| c.1 as i32 > c.0 as i32 + 60;
    let red = |c: plotters::style::RGBColor| c.0 as i32 > c.1 as i32 + 60;
    let with = h(Some(50.0));
    assert!(green(with.cell_color(12.7)) && green(with.cell_color(3.2)));
    assert!(red(with.cell_color(100.0)), "{:?}", with.cell_color(100.0));
    assert!(!green(with.cell_color(60.0)), "missing the SLO is not green");
    let g = chart::inspect(&with).unwrap();
    assert!(
        g.plots[0].legend_notes.iter().any(|n| n.contains("SLO (50 ms)")),
        "{:?}",
        g.plots[0].legend_notes
    );
    // relative colouring without one: the worst cell is red, and the key says relative
    let without = h(None);
    assert!(red(without.cell_color(12.7)));
    let g = chart::inspect(&without).unwrap();
    assert!(
        g.plots[0].legend_notes.iter().any(|n| n.contains("relative")),
        "{:?}",
        g.plots[0].legend_notes
    );
    // the demo-like report's maps are coloured by their SLO
    let d = tmp();
    let charts = demo_like_charts(d.path(), "ttft=500ms,tpot=50ms".parse().unwrap());
    let m = named(&charts, "heatmap-tpot-p50-concurrency");
    assert!(
        m.plots[0].cells.iter().all(|(v, c)| *v >= 25.0 || green(*c)),
        "{:?}",
        m.plots[0].cells
    );
}

/// Timelines shade and label every run, no line joins two runs, and GPU charts from
/// scripted devices carry the synthetic banner.
#[test]
fn chart_timelines_label_runs_and_synthetic_data_is_marked() {
    let d = tmp();
    let charts = demo_like_charts(d.path(), Default::default());
    let tl = named(&charts, "gpu-timeline");
    for p in &tl.plots {
        let names: Vec<&str> = p.bands.iter().map(|b| b.0.as_str()).collect();
        assert_eq!(
            names,
            vec!["mock-fp16", "mock-fp8", "mock-b-fp16", "mock-b-fp8"],
            "{}",
            p.title
        );
        let band = |x: i32| p.bands.iter().position(|b| x >= b.1 && x <= b.2);
        for (a, b) in &p.segments {
            if let (Some(x), Some(y)) = (band(a.0), band(b.0)) {
                assert_eq!(x, y, "{}: a line joins run {x} to run {y}", p.title);
            }
        }
    }
    // the time axes of stacked panels line up
    let xs: Vec<(i32, i32)> = tl
        .plots
        .iter()
        .map(|p| (p.area.unwrap().x0, p.area.unwrap().x1))
        .collect();
    assert!(xs.windows(2).all(|w| w[0] == w[1]), "{xs:?}");
    for name in ["gpu-timeline", "gpu-memory"] {
        let g = named(&charts, name);
        assert!(
            g.texts.iter().any(|t| t.text.contains("SYNTHETIC DATA")),
            "{name} lacks the synthetic banner"
        );
    }
    assert!(
        !named(&charts, "throughput-vs-concurrency")
            .texts
            .iter()
            .any(|t| t.text.contains("SYNTHETIC"))
    );
}

/// `chart --gpu` on a gpumon --fake file: its provenance says scripted devices, so the GPU
/// charts carry the SYNTHETIC DATA banner (in the SVG text too); other charts do not.
#[test]
fn chart_marks_gpumon_fake_data_synthetic() {
    let d = tmp();
    let g = d.path().join("g.parquet");
    ok(cmd("gpumon")
        .args(["--fake", "1", "--interval", "50ms", "--duration", "500ms", "-o"])
        .arg(&g));
    assert!(chart::gpu_files_synthetic(&[g.display().to_string()]));
    let paths = demo_like_requests(d.path());
    let s = d.path().join("s.parquet");
    ok(cmd("agg").args(&paths[..2]).arg("--gpu").arg(&g).arg("-o").arg(&s));
    let cd = d.path().join("charts");
    ok(cmd("chart")
        .arg(&s)
        .args(["--requests", &paths[0], "--requests", &paths[1]])
        .arg("--gpu")
        .arg(&g)
        .arg("-o")
        .arg(&cd));
    let svg = std::fs::read_to_string(cd.join("gpu-timeline.svg")).unwrap();
    assert!(svg.contains("SYNTHETIC DATA"), "gpu-timeline.svg lacks the banner");
    let svg = std::fs::read_to_string(cd.join("ttft-p99-vs-concurrency.svg")).unwrap();
    assert!(!svg.contains("SYNTHETIC"));
}

// ---- capacity charts (sweep's capacity rows) ----

/// Capacity rows as sweep writes them, by hand: three labels at p99 TTFT ≤ 500 ms and p99
/// TPOT ≤ 50 ms, each bracketed (2, 4, 8, 16 req/s; 16 saturated, its percentiles infinite)
/// then bisected to a passing and a failing rate 1 req/s apart (600 requests each). TTFT p99
/// grows as 500 · (rate / capacity)³. mock-b fp8 carries clearly more than mock fp8; mock
/// fp8 and mock fp16 overlap.
pub fn capacity_rows() -> Vec<servebench::schema::Capacity> {
    use servebench::schema::{Capacity, CapacityStep};
    let mk = |label: &str, engine: &str, quant: &str, cap: f64, ci: (f64, f64), pass: f64, cost: Option<f64>| {
        let rates = [2.0, 4.0, 8.0, 16.0, pass, pass + 1.0];
        let steps: Vec<CapacityStep> = rates
            .iter()
            .enumerate()
            .map(|(i, &rate)| {
                let saturated = rate >= 16.0;
                let ttft = 500.0 * (rate / cap).powi(3);
                let mut percentiles = std::collections::BTreeMap::new();
                if !saturated {
                    percentiles.insert("ttft_p99_ms".to_string(), ttft);
                    percentiles.insert("tpot_p99_ms".to_string(), 20.0 + 20.0 * rate / cap);
                }
                let meets = !saturated && ttft <= 500.0;
                CapacityStep {
                    step: i as u32 + 1,
                    phase: if i < 4 { "bracket" } else { "bisect" }.into(),
                    rate_rps: rate,
                    achieved_rate_rps: Some(rate),
                    planned_s: 20.0,
                    duration_s: if saturated { 4.0 } else { 20.0 },
                    n_sent: if i >= 4 { 600 } else { 100 },
                    n_ok: if i >= 4 { 600 } else { 100 },
                    attained_pct: Some(if saturated {
                        35.0
                    } else if meets {
                        100.0
                    } else {
                        97.0
                    }),
                    percentiles,
                    score: Some(ttft / 500.0),
                    meets,
                    saturated,
                    client_bound: false,
                    output_tok_per_s: Some(rate * 128.0),
                    stopped: saturated.then(|| "saturated".into()),
                    saturated_by: saturated.then(|| "in_flight".into()),
                }
            })
            .collect();
        Capacity {
            label: label.into(),
            engine: Some(engine.into()),
            model: Some("tiny".into()),
            quant: Some(quant.into()),
            slo: "ttft_p99<=500ms,tpot_p99<=50ms".into(),
            attainment: None,
            capacity_rps: Some(cap),
            capacity_rps_ci_lo: Some(ci.0),
            capacity_rps_ci_hi: Some(ci.1),
            capacity_output_tok_s: Some(cap * 128.0),
            capacity_output_tok_s_ci_lo: Some(ci.0 * 128.0),
            capacity_output_tok_s_ci_hi: Some(ci.1 * 128.0),
            interval: "bootstrap".into(),
            repeats: 1,
            passing_rps: Some(pass),
            failing_rps: Some(pass + 1.0),
            gpu_count: 1,
            gpu_hour_cost_usd: cost.map(|_| 2.5),
            cost_per_m_output_tokens_usd: cost,
            tolerance: 0.05,
            seed: 1,
            step_s: 20.0,
            n_steps: steps.len() as u32,
            search_s: 100.0,
            note: None,
            steps_json: CapacityStep::to_json_list(&steps),
        }
    };
    vec![
        mk("mock-fp16", "mock", "fp16", 12.2, (11.7, 12.6), 12.0, None),
        mk("mock-fp8", "mock", "fp8", 12.4, (11.9, 12.9), 12.0, None),
        mk("mock-b-fp8", "mock-b", "fp8", 14.1, (13.6, 14.5), 14.0, Some(0.21)),
    ]
}

/// Capacity rows to a capacity file through the contract's encoder.
pub fn write_capacity(path: &std::path::Path, rows: &[servebench::schema::Capacity], synthetic: bool) {
    use servebench::schema::Rows;
    let b = servebench::schema::Capacity::encode(rows, &());
    let mut meta = servebench::meta::Meta::for_output(&servebench::schema::CAPACITY, false);
    if synthetic {
        meta.set(servebench::meta::SYNTHETIC_KEY, "true");
    }
    servebench::io::write_all(Some(path), None, b.schema(), &meta, &[b]).unwrap();
}

/// Pixel x of data value `v` on a plot's x axis, from two of its labelled ticks.
fn x_pixel(p: &PlotGeom, v: f64) -> f64 {
    let f = |x: f64| if p.log_x { x.log10() } else { x };
    let (a, b) = (p.x_ticks[0], *p.x_ticks.last().unwrap());
    a.1 as f64 + (f(v) - f(a.0)) / (f(b.0) - f(a.0)) * (b.1 - a.1) as f64
}

/// The attainment chart draws every label's knee where its capacity is on the rate axis, and
/// the SLO's limit where it is on the latency axis; ticks only at the rates tried; legends
/// match their series, cover no data or label, and name the saturated ring; no text leaves
/// the canvas. The bars carry one bar and one interval per label.
#[test]
fn capacity_charts_draw_the_knee_the_slo_and_the_intervals() {
    use servebench::chart::capacity;
    let d = tmp();
    let rows = capacity_rows();
    let (res, got) = chart::recording(|| capacity::charts(&rows, d.path(), "hand-made capacity rows"));
    let files = res.unwrap();
    assert!(
        files.iter().any(|f| f.ends_with("capacity-attainment.png")),
        "{files:?}"
    );
    let charts: Vec<(String, Geometry)> = got
        .into_iter()
        .map(|(p, g)| (p.file_name().unwrap().to_string_lossy().to_string(), g))
        .collect();
    for (name, g) in &charts {
        let (w, h) = (g.size.0 as i32, g.size.1 as i32);
        for t in &g.texts {
            let r = t.rect;
            assert!(
                r.x0 >= 0 && r.y0 >= 0 && r.x1 <= w && r.y1 <= h,
                "{name}: {:?} at {r:?} leaves the canvas",
                t.text
            );
        }
        for p in &g.plots {
            // bars coloured per label carry their names on the axis, without a legend
            let Some(l) = p.legend else {
                assert_eq!(p.kind, "bars", "{name} / {}: no legend", p.title);
                continue;
            };
            assert!(!p.hits(&l, 6), "{name} / {}: legend {l:?} covers data", p.title);
            for (label, _, _, at) in &p.refs {
                if let Some(at) = at {
                    assert!(
                        !at.overlaps(&l),
                        "{name} / {}: legend covers the label {label}",
                        p.title
                    );
                }
            }
        }
    }
    let att = named(&charts, "capacity-attainment");
    assert_eq!(att.plots.len(), 3, "attainment, p99 TPOT and p99 TTFT");
    for p in &att.plots {
        assert_eq!(p.kind, "line");
        assert_eq!(p.legend_entries.len(), 3, "{}: three labels", p.title);
        assert_eq!(p.legend_entries, p.series, "{}", p.title);
        let ticks: Vec<f64> = p.x_ticks.iter().map(|t| t.0).collect();
        assert!(
            ticks
                .iter()
                .all(|t| [2.0, 4.0, 8.0, 12.0, 13.0, 14.0, 15.0, 16.0].contains(t)),
            "{ticks:?}"
        );
        assert!(p.log_x, "2 .. 16 req/s spans a factor of 8");
        // a vertical line per label, at its capacity
        let knees: Vec<_> = p.refs.iter().filter(|r| r.1.0 == r.2.0).collect();
        assert_eq!(knees.len(), 3, "{}: {:?}", p.title, p.refs);
        for (r, cap) in knees.iter().zip([12.2, 12.4, 14.1]) {
            let want = x_pixel(p, cap);
            assert!(
                (r.1.0 as f64 - want).abs() <= 2.0,
                "{}: knee {cap} at {} not {want}",
                p.title,
                r.1.0
            );
        }
    }
    // the ring names saturation, not client-boundness
    let ring = att.texts.iter().filter(|t| t.text == capacity::SATURATED_RING).count();
    assert_eq!(ring, 3, "a saturated ring entry in each panel's legend");
    // the TTFT limit: a horizontal line at 500 ms, between mock-fp16's 12 req/s (459 ms) and
    // 13 req/s (604 ms) points
    let ttft = att.plots.iter().find(|p| p.title.contains("TTFT")).unwrap();
    let limit = ttft
        .refs
        .iter()
        .find(|r| r.0 == "limit 500 ms")
        .expect("the TTFT limit");
    assert_eq!(limit.1.1, limit.2.1, "horizontal");
    let (v12, v13) = (500.0 * (12.0f64 / 12.2).powi(3), 500.0 * (13.0f64 / 12.2).powi(3));
    // mock-fp16's points: 2, 4, 8, 12, 13, 16 req/s
    let (p12, p13) = (ttft.points[3], ttft.points[4]);
    let want = p12.1 as f64 + (500.0 - v12) / (v13 - v12) * (p13.1 - p12.1) as f64;
    assert!(
        (limit.1.1 as f64 - want).abs() <= 2.0,
        "limit at y {} not {want}",
        limit.1.1
    );
    assert!(limit.3.is_some(), "the limit is labelled");
    // bars: a bar and an interval per label, coloured by engine, fp8 drawn light
    for name in ["capacity-rps", "capacity-output-tok-s"] {
        let b = &named(&charts, name).plots[0];
        assert_eq!(b.kind, "bars", "{name}");
        assert_eq!(b.boxes.len(), 3, "{name}");
        assert_eq!(b.segments.len(), 3, "{name}: an interval per bar");
    }
    let b = &named(&charts, "capacity-rps").plots[0];
    // mock-b fp8's interval [13.6, 14.5] spans 0.9 req/s, drawn 0.9/14.1 of its bar's height
    let bar = b.boxes[2];
    let (top, bottom) = (bar.y0 + 20, bar.y1);
    let ci = b.segments[2];
    let want = (0.9 / 14.1) * (bottom - top) as f64;
    assert!(((ci.0.1 - ci.1.1).abs() as f64 - want).abs() <= 2.0, "{ci:?} vs {want}");
}

/// `chart` draws the capacity charts from a capacity file given as its input.
#[test]
fn chart_command_draws_a_capacity_file() {
    let d = tmp();
    let f = d.path().join("capacity.parquet");
    write_capacity(&f, &capacity_rows(), false);
    let cd = d.path().join("charts");
    ok(cmd("chart").arg(&f).arg("-o").arg(&cd));
    for n in ["capacity-attainment", "capacity-rps", "capacity-output-tok-s"] {
        for e in ["png", "svg"] {
            assert!(cd.join(format!("{n}.{e}")).exists(), "{n}.{e} missing");
        }
    }
    let svg = std::fs::read_to_string(cd.join("capacity-attainment.svg")).unwrap();
    assert!(svg.contains("p99 TTFT ≤ 500 ms"), "the SLO in the title");
}
