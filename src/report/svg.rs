//! A small SVG writer for the charts of the HTML report: linear scales,
//! axes with tick labels and axis titles, and escaped text.
//!
//! Every chart is drawn in its own coordinate system (`viewBox`) and
//! scaled to the page width by CSS, so it stays sharp on a phone and on
//! paper. All text goes through [`escape`].

use std::fmt::Write as _;

/// Width of a full-width chart's coordinate system; CSS scales it to the page.
pub const WIDTH: f64 = 640.0;

/// The Okabe-Ito palette, distinguishable with the common colour-vision
/// deficiencies: blue, vermillion, bluish green, orange, reddish purple.
pub const PALETTE: [&str; 5] = ["#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7"];

/// Escapes text for HTML and SVG content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Maps a value range onto a pixel range.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub domain: (f64, f64),
    pub range: (f64, f64),
}

impl Scale {
    pub fn new(domain: (f64, f64), range: (f64, f64)) -> Self {
        // A flat domain (one snapshot, one value) would divide by zero.
        let domain = if domain.1 > domain.0 {
            domain
        } else {
            (domain.0 - 1.0, domain.0 + 1.0)
        };
        Scale { domain, range }
    }

    pub fn at(&self, value: f64) -> f64 {
        let share = (value - self.domain.0) / (self.domain.1 - self.domain.0);
        self.range.0 + share * (self.range.1 - self.range.0)
    }
}

/// Returns a rounded upper bound for a fraction axis: the next multiple of
/// 10% above `max`, at least 10% and at most 100%.
pub fn fraction_axis_max(max: f64) -> f64 {
    if !max.is_finite() || max <= 0.0 {
        return 0.1;
    }
    ((max * 10.0).ceil() / 10.0).clamp(0.1, 1.0)
}

/// Returns about `count` evenly spaced tick values from `min` to `max`.
pub fn ticks(min: f64, max: f64, count: usize) -> Vec<f64> {
    let count = count.max(2);
    (0..count)
        .map(|i| min + (max - min) * i as f64 / (count - 1) as f64)
        .collect()
}

/// Formats a fraction as a whole percentage, e.g. `0.25` as `25%`.
pub fn percent_tick(value: f64) -> String {
    format!("{:.0}%", value * 100.0)
}

/// An SVG document under construction, with the plot area between margins.
pub struct Canvas {
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
    body: String,
}

impl Canvas {
    /// Starts a canvas of `width` by `height` with room for axis labels on
    /// the left and at the bottom.
    pub fn new(width: f64, height: f64, left_margin: f64) -> Self {
        Canvas {
            width,
            height,
            left: left_margin,
            right: width - 16.0,
            top: 16.0,
            bottom: height - 48.0,
            body: String::new(),
        }
    }

    pub fn raw(&mut self, element: &str) {
        self.body.push_str(element);
        self.body.push('\n');
    }

    pub fn line(&mut self, from: (f64, f64), to: (f64, f64), class: &str) {
        let _ = writeln!(
            self.body,
            r#"<line class="{class}" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/>"#,
            from.0, from.1, to.0, to.1
        );
    }

    pub fn rect(&mut self, x: f64, y: f64, width: f64, height: f64, fill: &str, tip: &str) {
        let _ = writeln!(
            self.body,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{fill}"><title>{}</title></rect>"#,
            width.max(0.0),
            height.max(0.0),
            escape(tip)
        );
    }

    /// Writes text anchored at `start`, `middle` or `end`.
    pub fn text(&mut self, at: (f64, f64), anchor: &str, class: &str, text: &str) {
        let _ = writeln!(
            self.body,
            r#"<text class="{class}" x="{:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
            at.0,
            at.1,
            escape(text)
        );
    }

    /// Draws a polyline through the points, with a dot at each point.
    pub fn series(&mut self, points: &[(f64, f64)], colour: &str, dash: bool, tips: &[String]) {
        if points.len() > 1 {
            let path: Vec<String> = points
                .iter()
                .map(|(x, y)| format!("{x:.1},{y:.1}"))
                .collect();
            let dash = if dash {
                r#" stroke-dasharray="6 4""#
            } else {
                ""
            };
            let _ = writeln!(
                self.body,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="2.5"{dash} points="{}"/>"#,
                path.join(" ")
            );
        }
        for ((x, y), tip) in points.iter().zip(tips) {
            let _ = writeln!(
                self.body,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{colour}"><title>{}</title></circle>"#,
                escape(tip)
            );
        }
    }

    /// Draws the y axis with grid lines at `values`, labelled by `label`,
    /// and the axis title rotated along it.
    pub fn y_axis(
        &mut self,
        scale: &Scale,
        values: &[f64],
        label: impl Fn(f64) -> String,
        title: &str,
    ) {
        for value in values {
            let y = scale.at(*value);
            self.line((self.left, y), (self.right, y), "grid");
            self.text((self.left - 6.0, y + 4.0), "end", "tick", &label(*value));
        }
        self.line((self.left, self.top), (self.left, self.bottom), "axis");
        let middle = (self.top + self.bottom) / 2.0;
        let _ = writeln!(
            self.body,
            r#"<text class="axis-label" transform="translate(14 {middle:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            escape(title)
        );
    }

    /// Draws the x axis line with tick labels at the given positions and the
    /// axis title below them.
    pub fn x_axis(&mut self, ticks: &[(f64, String)], title: &str) {
        self.line((self.left, self.bottom), (self.right, self.bottom), "axis");
        for (x, label) in ticks {
            self.line((*x, self.bottom), (*x, self.bottom + 5.0), "axis");
            self.text((*x, self.bottom + 18.0), "middle", "tick", label);
        }
        let middle = (self.left + self.right) / 2.0;
        self.text((middle, self.height - 8.0), "middle", "axis-label", title);
    }

    /// Finishes the document. `title` becomes the accessible name.
    pub fn finish(self, id: &str, title: &str) -> String {
        format!(
            "<svg viewBox=\"0 0 {:.0} {:.0}\" role=\"img\" aria-labelledby=\"{id}-title\">\n<title id=\"{id}-title\">{}</title>\n{}</svg>",
            self.width,
            self.height,
            escape(title),
            self.body
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_markup_characters() {
        assert_eq!(
            escape(r#"Bjørn <Bøss> & "Co" 'x'"#),
            "Bjørn &lt;Bøss&gt; &amp; &quot;Co&quot; &#39;x&#39;"
        );
    }

    #[test]
    fn scale_maps_and_handles_flat_domain() {
        let scale = Scale::new((0.0, 0.5), (300.0, 100.0));
        assert_eq!(scale.at(0.0), 300.0);
        assert_eq!(scale.at(0.25), 200.0);
        let flat = Scale::new((5.0, 5.0), (0.0, 100.0));
        assert_eq!(flat.at(5.0), 50.0);
    }

    #[test]
    fn fraction_axis_rounds_up() {
        assert_eq!(fraction_axis_max(0.23), 0.3);
        assert_eq!(fraction_axis_max(0.0), 0.1);
        assert_eq!(fraction_axis_max(0.97), 1.0);
        assert_eq!(fraction_axis_max(f64::NAN), 0.1);
    }
}
