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
    let img = decode(bytes)?;
    attempts.iter().find_map(|&(edge, quality)| {
        let jpeg = encode(&img.thumbnail(edge, edge), quality)?;
        (jpeg.len() <= max_bytes).then_some(Preview {
            jpeg,
            width: img.width(),
            height: img.height(),
        })
    })
}

/// A profile picture: the centre square of the image, scaled down to at
/// most `edge` pixels a side, as a JPEG of at most `max_bytes` (the first
/// of `qualities` that fits). Only pixels survive: no metadata (location,
/// camera) and nothing a crafted file carried besides them.
pub fn square_jpeg(bytes: &[u8], edge: u32, qualities: &[u8], max_bytes: usize) -> Option<Vec<u8>> {
    let img = decode(bytes)?;
    let side = img.width().min(img.height());
    if side == 0 {
        return None;
    }
    let square = img.crop_imm(
        (img.width() - side) / 2,
        (img.height() - side) / 2,
        side,
        side,
    );
    let small = if side > edge {
        square.resize_exact(edge, edge, image::imageops::FilterType::Lanczos3)
    } else {
        square
    };
    qualities
        .iter()
        .find_map(|&q| encode(&small, q).filter(|jpeg| jpeg.len() <= max_bytes))
}

/// Decodes within bounds on canvas size and allocation.
fn decode(bytes: &[u8]) -> Option<image::DynamicImage> {
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .ok()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(16_384);
    limits.max_image_height = Some(16_384);
    limits.max_alloc = Some(256 << 20);
    reader.limits(limits);
    reader.decode().ok()
}

fn encode(img: &image::DynamicImage, quality: u8) -> Option<Vec<u8>> {
    let mut jpeg = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, quality);
    img.to_rgb8().write_with_encoder(encoder).ok()?;
    Some(jpeg)
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

    #[test]
    fn profile_pictures_are_centre_squares_at_most_the_edge() {
        let img = image::RgbImage::from_fn(900, 600, |x, _| {
            // Red left and right thirds, green in the middle.
            if (300..600).contains(&x) {
                image::Rgb([0, 255, 0])
            } else {
                image::Rgb([255, 0, 0])
            }
        });
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("png");
        let jpeg = square_jpeg(&png, 512, &[85], 1 << 20).expect("avatar");
        let back = image::load_from_memory(&jpeg).expect("jpeg").to_rgb8();
        assert_eq!((back.width(), back.height()), (512, 512));
        // The crop kept the middle 600 columns: green in the centre, red at the sides.
        let centre = back.get_pixel(256, 256);
        let side = back.get_pixel(5, 256);
        assert!(centre[1] > 200 && centre[0] < 60, "{centre:?}");
        assert!(side[0] > 200 && side[1] < 60, "{side:?}");
        // A small picture is not blown up.
        let tiny = image::RgbImage::from_pixel(40, 30, image::Rgb([9, 9, 9]));
        let mut png = Vec::new();
        tiny.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("png");
        let back = image::load_from_memory(&square_jpeg(&png, 512, &[85], 1 << 20).expect("tiny"))
            .expect("jpeg");
        assert_eq!((back.width(), back.height()), (30, 30));
        assert!(square_jpeg(b"GIF89a junk", 512, &[85], 1 << 20).is_none());
        assert!(square_jpeg(&png, 512, &[85], 10).is_none());
    }
}
