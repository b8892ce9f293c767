//! QR codes drawn as SVG: the server's coupon sheets and the counter terminal's receipts.

use qrcode::{EcLevel, QrCode};

/// Why a text has no QR code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the text is too long for a QR code")]
pub struct TooLong;

/// The QR code of `text` as an SVG whose one path draws each row's dark runs (a few KB, so
/// that a 10,000-coupon sheet stays printable), with the quiet zone scanners need.
pub fn svg(text: &str) -> Result<String, TooLong> {
    // Medium error correction survives a smudged or folded print.
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).map_err(|_| TooLong)?;
    let width = code.width();
    let colors = code.to_colors();
    let quiet = 4;
    let size = width + 2 * quiet;
    let mut path = String::with_capacity(width * width);
    for y in 0..width {
        let mut x = 0;
        while x < width {
            if colors[y * width + x] == qrcode::Color::Dark {
                let start = x;
                while x < width && colors[y * width + x] == qrcode::Color::Dark {
                    x += 1;
                }
                path.push_str(&format!("M{} {}h{}v1h-{}z", start + quiet, y + quiet, x - start, x - start));
            } else {
                x += 1;
            }
        }
    }
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" shape-rendering=\"crispEdges\" \
         role=\"img\" aria-label=\"QR\"><rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/><path d=\"{path}\"/></svg>"
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_code_is_drawn_and_an_oversized_text_refused() {
        let svg = super::svg("mykey-receipt:1:test").unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<path d=\"M"), "{svg}");
        assert!(super::svg(&"x".repeat(5000)).is_err());
    }
}
