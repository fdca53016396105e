//! Previews of public-channel images (stored in the clear, so the server may
//! read them).
pub(crate) use vestnik_core::limits::PREVIEW_MAX_SOURCE_BYTES as MAX_SOURCE_BYTES;

pub(crate) fn jpeg_preview(bytes: &[u8]) -> Option<Vec<u8>> {
    vestnik_preview::jpeg_preview(bytes, &[(320, 75)], 1 << 20).map(|p| p.jpeg)
}
