//! Previews of public-channel images (stored in the clear, so the server may
//! read them).

/// Larger images get no preview (decoding holds them in memory).
pub(crate) const MAX_SOURCE_BYTES: i64 = 20 << 20;

pub(crate) fn jpeg_preview(bytes: &[u8]) -> Option<Vec<u8>> {
    vestnik_preview::jpeg_preview(bytes, &[(320, 75)], 1 << 20).map(|p| p.jpeg)
}
