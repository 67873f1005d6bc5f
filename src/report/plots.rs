//! Draws the report's pictures with plotters, each as SVG and PNG. Every plot is described by a
//! `LineSpec`/`BarSpec` (pure data, tested); drawing only renders the spec.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::model::Point;

pub struct Line {
    pub name: String,
    pub points: Vec<Point>,
}

pub struct LineSpec {
    pub file: String,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub lines: Vec<Line>,
    /// log10 x axis (percentile distributions: 1/(1-q))
    pub log_x: bool,
    /// a horizontal reference line (threshold)
    pub hline: Option<(f64, String)>,
    pub y_min_zero: bool,
    /// x is seconds from this unix time, labelled as UTC clock time (`report --time utc`)
    pub x_utc: Option<f64>,
    /// vertical lines (x, label): the moments `report --mark` names, e.g. a cutover
    pub vlines: Vec<(f64, String)>,
}

/// Unix seconds as UTC clock time, HH:MM:SS.
fn utc_clock(t: f64) -> String {
    let fmt = time::macros::format_description!("[hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp(t.floor() as i64)
        .ok()
        .and_then(|d| d.format(&fmt).ok())
        .unwrap_or_else(|| format!("{t:.0}"))
}

pub struct BarSpec {
    pub file: String,
    pub title: String,
    pub y_label: String,
    /// x categories
    pub categories: Vec<String>,
    /// series name -> one value per category
    pub series: Vec<(String, Vec<f64>)>,
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// PNG text needs a font file; SVG does not. DejaVu Sans is looked for where Debian puts it,
/// or at $EDGELOAD_FONT.
pub(crate) fn load_font() -> bool {
    static LOADED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LOADED.get_or_init(|| {
        let mut candidates: Vec<PathBuf> = std::env::var_os("EDGELOAD_FONT")
            .map(PathBuf::from)
            .into_iter()
            .collect();
        candidates.extend(
            [
                "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                "/usr/share/fonts/TTF/DejaVuSans.ttf",
                "/usr/share/fonts/dejavu/DejaVuSans.ttf",
                "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
            ]
            .map(PathBuf::from),
        );
        for c in candidates {
            if let Ok(bytes) = std::fs::read(&c) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

fn bounds(spec: &LineSpec) -> (f64, f64, f64, f64) {
    let tx = |x: f64| if spec.log_x { x.max(1.0).log10() } else { x };
    let mut xs = spec
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| tx(p.0)));
    let first = xs.next().unwrap_or(0.0);
    let (mut x0, mut x1) = xs.fold((first, first), |(a, b), x| (a.min(x), b.max(x)));
    if !spec.log_x {
        for (x, _) in &spec.vlines {
            (x0, x1) = (x0.min(*x), x1.max(*x));
        }
    }
    let ys: Vec<f64> = spec
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .collect();
    let mut y0 = ys.iter().copied().fold(f64::MAX, f64::min);
    let mut y1 = ys.iter().copied().fold(f64::MIN, f64::max);
    if let Some((h, _)) = &spec.hline {
        y0 = y0.min(*h);
        y1 = y1.max(*h);
    }
    if ys.is_empty() {
        (y0, y1) = (0.0, 1.0);
    }
    if spec.y_min_zero {
        y0 = 0.0;
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    let pad = (y1 - y0) * 0.05;
    if !spec.y_min_zero {
        y0 -= pad;
    }
    if spec.log_x {
        // whole decades, so the ticks land on 0%, 90%, 99%, 99.9%...
        x0 = 0.0;
        x1 = x1.ceil().max(1.0);
    }
    (x0, x1, y0, y1 + pad)
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// A point's place on the drawing (pixels) and what it says on hover.
pub(crate) struct Hover {
    x: i32,
    y: i32,
    text: String,
}

fn draw_lines<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    spec: &LineSpec,
) -> Result<Vec<Hover>, String> {
    root.fill(&WHITE).map_err(err)?;
    let (x0, x1, y0, y1) = bounds(spec);
    let mut chart = ChartBuilder::on(&root)
        .caption(&spec.title, ("sans-serif", 22))
        .margin(12)
        .margin_right(40)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    let log_x = spec.log_x;
    let x_utc = spec.x_utc;
    let xfmt = move |v: &f64| {
        if let Some(o) = x_utc {
            utc_clock(o + v)
        } else if log_x {
            let x = 10f64.powf(*v);
            // 1/(1-q) -> the percentile it stands for
            let q = 100.0 * (1.0 - 1.0 / x);
            let s = format!("{q:.4}");
            format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
        } else {
            format!("{v:.0}")
        }
    };
    let mut mesh = chart.configure_mesh();
    if log_x {
        mesh.x_labels(x1 as usize + 1);
    }
    mesh.x_desc(spec.x_label.as_str())
        .y_desc(spec.y_label.as_str())
        .x_label_formatter(&xfmt)
        .y_label_formatter(&|v: &f64| format!("{v:.1}"))
        .draw()
        .map_err(err)?;
    let mut hovers = Vec::new();
    for (i, l) in spec.lines.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<(f64, f64)> = l
            .points
            .iter()
            .map(|p| (if log_x { p.0.max(1.0).log10() } else { p.0 }, p.1))
            .collect();
        for (p, orig) in pts.iter().zip(&l.points) {
            let (x, y) = chart.backend_coord(p);
            let at = if let Some(o) = x_utc {
                format!("{} UTC", utc_clock(o + p.0))
            } else if log_x {
                xfmt(&p.0)
            } else {
                fmt_value(orig.0, &spec.x_label)
            };
            hovers.push(Hover {
                x,
                y,
                text: format!("{}: {} at {at}", l.name, fmt_value(orig.1, &spec.y_label)),
            });
        }
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(err)?
            .label(l.name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    if let Some((h, label)) = &spec.hline {
        let red = RGBColor(200, 0, 0);
        chart
            .draw_series(LineSeries::new(
                vec![(x0, *h), (x1, *h)],
                red.stroke_width(1),
            ))
            .map_err(err)?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], red));
    }
    for (x, label) in spec.vlines.iter().filter(|_| !log_x) {
        let mark = RGBColor(120, 40, 160);
        let at = x_utc.map_or_else(
            || format!("{x:.0}"),
            |o| format!("{} UTC", utc_clock(o + x)),
        );
        let text = format!("{label} at {at}");
        let (px, py) = chart.backend_coord(&(*x, y1));
        hovers.push(Hover {
            x: px,
            y: py,
            text: text.clone(),
        });
        chart
            .draw_series(LineSeries::new(
                vec![(*x, y0), (*x, y1)],
                mark.stroke_width(2),
            ))
            .map_err(err)?
            .label(text)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], mark));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(hovers)
}

/// A value with its axis's unit: "12.35 ms" from "latency (ms)".
fn fmt_value(v: f64, axis: &str) -> String {
    let unit = axis
        .rsplit_once('(')
        .and_then(|(_, u)| u.strip_suffix(')'))
        .unwrap_or("");
    format!("{v:.2} {unit}").trim_end().to_string()
}

fn draw_bars<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    spec: &BarSpec,
) -> Result<Vec<Hover>, String> {
    root.fill(&WHITE).map_err(err)?;
    let n = spec.categories.len().max(1) as f64;
    let k = spec.series.len().max(1) as f64;
    let ymax = spec
        .series
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption(&spec.title, ("sans-serif", 22))
        .margin(12)
        .margin_right(40)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..n, 0f64..ymax)
        .map_err(err)?;
    let cats = spec.categories.clone();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(spec.categories.len() * 2 + 1)
        .x_label_formatter(&|v: &f64| {
            let i = v.floor() as usize;
            if (v - v.floor() - 0.5).abs() < 0.26 {
                cats.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc(spec.y_label.as_str())
        .draw()
        .map_err(err)?;
    let mut hovers = Vec::new();
    for (si, (name, vals)) in spec.series.iter().enumerate() {
        let color = COLORS[si % COLORS.len()];
        let w = 0.8 / k;
        for (ci, v) in vals.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(ci as f64 + 0.1 + (si as f64 + 0.47) * w, *v));
            hovers.push(Hover {
                x,
                y,
                text: format!(
                    "{name}, {}: {}",
                    spec.categories.get(ci).map_or("", String::as_str),
                    fmt_value(*v, &spec.y_label)
                ),
            });
        }
        chart
            .draw_series(vals.iter().enumerate().map(|(ci, v)| {
                let x = ci as f64 + 0.1 + si as f64 * w;
                Rectangle::new([(x, 0.0), (x + w * 0.95, *v)], color.filled())
            }))
            .map_err(err)?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(hovers)
}

const SIZE: (u32, u32) = (1000, 520);

pub(crate) const NO_FONT: &str = "plots need a TrueType font to measure text: install fonts-dejavu-core (Debian) or set EDGELOAD_FONT=/path/to/font.ttf, or use --no-plots";

/// A plot description that can draw itself on any plotters backend.
pub(crate) trait Plot {
    fn file(&self) -> &str;
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<Vec<Hover>, String>;
}

impl Plot for LineSpec {
    fn file(&self) -> &str {
        &self.file
    }
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<Vec<Hover>, String> {
        draw_lines(root, self)
    }
}

impl Plot for BarSpec {
    fn file(&self) -> &str {
        &self.file
    }
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<Vec<Hover>, String> {
        draw_bars(root, self)
    }
}

/// Most hover points a plot carries (each ~150 bytes of report.html).
const MAX_HOVERS: usize = 3000;

/// Points that show their values on hover: a transparent circle each, with a `<title>` (the
/// browser's tooltip; no script), before the SVG's end.
fn add_hovers(svg: &mut String, hovers: &[Hover]) {
    let Some(end) = svg.rfind("</svg>") else {
        return;
    };
    let mut g = String::from(
        "<style>.pt{fill:transparent}.pt:hover{fill:#0007}</style><g class=\"points\">",
    );
    // a long run's lines have many points: at most MAX_HOVERS a plot keep the page light
    let step = hovers.len().div_ceil(MAX_HOVERS).max(1);
    for h in hovers.iter().step_by(step) {
        use std::fmt::Write;
        let _ = write!(
            g,
            "<circle class=\"pt\" cx=\"{}\" cy=\"{}\" r=\"5\"><title>{}</title></circle>",
            h.x,
            h.y,
            super::doc::esc(&h.text.replace(char::is_control, " "))
        );
    }
    g.push_str("</g>");
    svg.insert_str(end, &g);
}

/// Writes `<file>.svg` and `<file>.png` (both need a font to measure text); returns the SVG text.
pub(crate) fn render(dir: &Path, spec: &impl Plot) -> Result<String, String> {
    if !load_font() {
        return Err(NO_FONT.into());
    }
    // each file appears whole or not at all
    let mut svg = String::new();
    let hovers = spec.draw(SVGBackend::with_string(&mut svg, SIZE).into_drawing_area())?;
    add_hovers(&mut svg, &hovers);
    let svg_path = dir.join(format!("{}.svg", spec.file()));
    crate::guard::atomic::write(&svg_path, svg.as_bytes()).map_err(|e| e.to_string())?;
    // the bitmap backend picks its encoder from the extension: a hidden .png, then renamed
    let png = dir.join(format!("{}.png", spec.file()));
    let tmp = dir.join(format!(".{}.{}.png", spec.file(), std::process::id()));
    let drawn = spec.draw(BitMapBackend::new(&tmp, SIZE).into_drawing_area());
    let placed = drawn.and_then(|_| std::fs::rename(&tmp, &png).map_err(|e| e.to_string()));
    if placed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    placed.map_err(|e| format!("{}: {e}", png.display()))?;
    Ok(svg)
}
