//! JPEG previews of images. Decoding is bounded (canvas size and
//! allocation), so a decompression bomb is refused instead of filling memory.
use image::ImageReader;

/// A preview: JPEG bytes and the source image's size.
pub struct Preview {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// Decodes `bytes` (JPEG, PNG, GIF or WebP) and encodes a JPEG of it that
/// fits `edge`×`edge`, for each `(edge, quality)` in turn until one is at
/// most `max_bytes`. None when it is no image or no attempt is small enough.
pub fn jpeg_preview(bytes: &[u8], attempts: &[(u32, u8)], max_bytes: usize) -> Option<Preview> {
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .ok()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(16_384);
    limits.max_image_height = Some(16_384);
    limits.max_alloc = Some(256 << 20);
    reader.limits(limits);
    let img = reader.decode().ok()?;
    attempts.iter().find_map(|&(edge, quality)| {
        let small = img.thumbnail(edge, edge).to_rgb8();
        let mut jpeg = Vec::new();
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, quality);
        small.write_with_encoder(encoder).ok()?;
        (jpeg.len() <= max_bytes).then_some(Preview {
            jpeg,
            width: img.width(),
            height: img.height(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_are_small_jpegs_and_junk_or_bombs_get_none() {
        let img = image::RgbImage::from_fn(1200, 800, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("png");
        let p = jpeg_preview(&png, &[(320, 75)], 1 << 20).expect("preview");
        let back = image::load_from_memory(&p.jpeg).expect("jpeg");
        assert_eq!(
            (back.width(), back.height(), p.width, p.height),
            (320, 213, 1200, 800)
        );
        // Too big at every attempt.
        assert!(jpeg_preview(&png, &[(320, 75)], 100).is_none());
        assert!(jpeg_preview(b"not an image", &[(320, 75)], 1 << 20).is_none());
        // A PNG header claiming a 100,000 × 100,000 canvas is refused before decoding.
        let mut bomb = png.clone();
        bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        assert!(jpeg_preview(&bomb, &[(320, 75)], 1 << 20).is_none());
    }
}
