//! The report as typed blocks (sections of tables, lists and plots), rendered to Markdown
//! (report.md) and to HTML (report.html) from the same rows: no renderer re-parses another's
//! output, and the HTML writer escapes every text it writes, in elements and in attributes.

use std::fmt::Write;

/// A piece of text in a cell or a list item.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Span {
    Text(String),
    Strong(String),
    Code(String),
    /// a verdict: passed (true) or failed, seen at a glance in HTML
    Verdict(bool, String),
}

pub(crate) fn text(s: impl Into<String>) -> Span {
    Span::Text(s.into())
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Align {
    Left,
    Right,
}

pub(crate) struct Table {
    pub(crate) head: Vec<String>,
    pub(crate) align: Vec<Align>,
    pub(crate) rows: Vec<Vec<Vec<Span>>>,
}

impl Table {
    /// Plain rows: the first column left, the others right (numbers).
    pub(crate) fn plain<H: AsRef<str>>(head: &[H], rows: &[Vec<String>]) -> Table {
        Table {
            head: head.iter().map(|h| h.as_ref().to_string()).collect(),
            align: (0..head.len())
                .map(|i| if i == 0 { Align::Left } else { Align::Right })
                .collect(),
            rows: (rows.iter())
                .map(|r| r.iter().map(|c| vec![text(c.as_str())]).collect())
                .collect(),
        }
    }
}

pub(crate) enum Block {
    Table(Table),
    List(Vec<Vec<Span>>),
    /// plot files (`plots/<name>.svg`)
    Plots(Vec<String>),
}

pub(crate) struct Section {
    pub(crate) title: String,
    pub(crate) blocks: Vec<Block>,
}

pub(crate) struct Doc {
    pub(crate) title: String,
    pub(crate) sections: Vec<Section>,
}

/// Text as Markdown shows it literally: line breaks become spaces (a cell or item is one line),
/// and the characters Markdown would read as markup or HTML are backslash-escaped.
fn md_text(x: &str, in_table: bool) -> String {
    let mut out = String::with_capacity(x.len());
    for c in x.chars() {
        match c {
            '\r' | '\n' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '|' if in_table => out.push_str("\\|"),
            c => out.push(c),
        }
    }
    out
}

/// A code span fenced by more backticks than the text holds in a row.
fn md_code(x: &str) -> String {
    let x = x.replace(['\r', '\n'], " ");
    let mut run = 0;
    let mut longest = 0;
    for c in x.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    if longest == 0 {
        format!("{fence}{x}{fence}")
    } else {
        format!("{fence} {x} {fence}")
    }
}

fn md_spans(spans: &[Span], in_table: bool) -> String {
    let mut out = String::new();
    for s in spans {
        match s {
            Span::Text(x) => out += &md_text(x, in_table),
            Span::Strong(x) => out += &format!("**{}**", md_text(x, in_table)),
            Span::Code(x) if in_table => out += &md_code(&x.replace('|', "\\|")),
            Span::Code(x) => out += &md_code(x),
            Span::Verdict(true, x) => out += &md_text(x, in_table),
            Span::Verdict(false, x) => out += &format!("**{}**", md_text(x, in_table)),
        }
    }
    out
}

/// Text for HTML element content and attribute values alike.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html_spans(spans: &[Span]) -> String {
    let mut out = String::new();
    for s in spans {
        match s {
            Span::Text(x) => out += &esc(x),
            Span::Strong(x) => out += &format!("<strong>{}</strong>", esc(x)),
            Span::Code(x) => out += &format!("<code>{}</code>", esc(x)),
            Span::Verdict(ok, x) => {
                let class = if *ok { "pass" } else { "fail" };
                out += &format!("<span class=\"{class}\">{}</span>", esc(x))
            }
        }
    }
    out
}

impl Doc {
    pub(crate) fn markdown(&self) -> String {
        let mut md = format!("# {}\n\n", self.title);
        for s in &self.sections {
            let _ = write!(md, "## {}\n\n", s.title);
            for b in &s.blocks {
                match b {
                    Block::Table(t) => {
                        let _ = writeln!(md, "| {} |", t.head.join(" | "));
                        md.push('|');
                        for a in &t.align {
                            md.push_str(match a {
                                Align::Left => "---|",
                                Align::Right => "---:|",
                            });
                        }
                        md.push('\n');
                        for r in &t.rows {
                            let cells: Vec<String> = r.iter().map(|c| md_spans(c, true)).collect();
                            let _ = writeln!(md, "| {} |", cells.join(" | "));
                        }
                        md.push('\n');
                    }
                    Block::List(items) => {
                        for i in items {
                            let _ = writeln!(md, "- {}", md_spans(i, false));
                        }
                        md.push('\n');
                    }
                    Block::Plots(files) => {
                        for f in files {
                            let _ = writeln!(md, "![{f}](plots/{f}.svg)");
                        }
                    }
                }
            }
        }
        md
    }

    /// One self-contained page: tables, lists, the plots inline (`svgs`: title and SVG text, in
    /// the order of the plot files), no external resources.
    pub(crate) fn html(&self, svgs: &[(String, String)]) -> String {
        let mut out = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>\
body{{font-family:sans-serif;margin:2em;color:#222}}svg{{max-width:100%;height:auto}}\
table{{display:block;overflow-x:auto}}table{{border-collapse:collapse;margin:1em 0;font-size:13px}}\
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td.l,th.l{{text-align:left}}\
th{{background:#f3f3f3}}h2{{margin-top:1.5em}}.plot{{margin:1em 0}}\
.pass,.fail{{font-weight:bold;padding:1px 6px;border-radius:3px}}.pass{{background:#d4edda;color:#155724}}\
.fail{{background:#f8d7da;color:#721c24}}</style></head><body><h1>{}</h1>\n",
            esc(&self.title),
            esc(&self.title)
        );
        // the summary links to the details
        out.push_str("<nav><p>");
        for (i, s) in self.sections.iter().enumerate() {
            let sep = if i == 0 { "" } else { " · " };
            let _ = write!(out, "{sep}<a href=\"#s{i}\">{}</a>", esc(&s.title));
        }
        out.push_str("</p></nav>\n");
        for (i, s) in self.sections.iter().enumerate() {
            let _ = writeln!(out, "<h2 id=\"s{i}\">{}</h2>", esc(&s.title));
            for b in &s.blocks {
                match b {
                    Block::Table(t) => {
                        let class = |i: usize| match t.align.get(i) {
                            Some(Align::Left) => " class=\"l\"",
                            _ => "",
                        };
                        out.push_str("<table><tr>");
                        for (i, h) in t.head.iter().enumerate() {
                            let _ = write!(out, "<th{}>{}</th>", class(i), esc(h));
                        }
                        out.push_str("</tr>\n");
                        for r in &t.rows {
                            out.push_str("<tr>");
                            for (i, c) in r.iter().enumerate() {
                                let _ = write!(out, "<td{}>{}</td>", class(i), html_spans(c));
                            }
                            out.push_str("</tr>\n");
                        }
                        out.push_str("</table>\n");
                    }
                    Block::List(items) => {
                        out.push_str("<ul>");
                        for i in items {
                            let _ = write!(out, "<li>{}</li>", html_spans(i));
                        }
                        out.push_str("</ul>\n");
                    }
                    Block::Plots(_) => {
                        for (title, svg) in svgs {
                            let svg = match svg.find("<svg") {
                                Some(i) => &svg[i..],
                                None => svg,
                            };
                            let _ = writeln!(
                                out,
                                "<div class=\"plot\" title=\"{}\">{svg}</div>",
                                esc(title)
                            );
                        }
                    }
                }
            }
        }
        out.push_str("</body></html>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(cell: &str) -> Doc {
        Doc {
            title: "edgeload report".into(),
            sections: vec![Section {
                title: "Runs".into(),
                blocks: vec![
                    Block::Table(Table::plain(
                        &["group", "n"],
                        &[vec![cell.into(), "1".into()]],
                    )),
                    Block::List(vec![vec![
                        Span::Strong("FAIL".into()),
                        text(" "),
                        Span::Code(cell.into()),
                    ]]),
                ],
            }],
        }
    }

    #[test]
    fn html_escapes_every_text_and_markdown_keeps_table_cells_whole() {
        let evil = "a | b\"><script>x</script>'";
        let d = doc(evil);
        let h = d.html(&[("t\"x".into(), "<svg></svg>".into())]);
        assert!(!h.contains("<script>"), "{h}");
        assert!(
            h.contains("a | b&quot;&gt;&lt;script&gt;x&lt;/script&gt;&#39;"),
            "{h}"
        );
        let md = d.markdown();
        assert!(
            md.contains("| a \\| b\"\\>\\<script\\>x\\</script\\>' | 1 |"),
            "{md}"
        );
        assert!(md.contains("- **FAIL** `a | b\"><script>"), "{md}");
        assert_eq!(md_code("a`b"), "`` a`b ``");
        assert_eq!(md_text("x\ny_*", false), "x y\\_\\*");
    }
}
