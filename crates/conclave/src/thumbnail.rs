//! Previews made on this machine for the pictures `conclave chat upload`
//! shares, as a messaging app makes them: a small JPEG the receivers show
//! before they download the picture, sealed and uploaded beside it like any
//! file, so the server never sees either.
//!
//! Only PNG and JPEG are read, with limits: a picture that claims to be
//! enormous (a decompression bomb) or does not decode gets no preview, and
//! is still shared as a file.

use std::io::Cursor;
use std::path::Path;

use image::{ImageFormat, ImageReader, Limits};

/// The longest side of a preview, in pixels.
pub const MAX_SIDE: u32 = 320;

/// The largest picture read to make one (either side, in pixels).
const MAX_SOURCE_SIDE: u32 = 16_384;

/// Memory the decoder may take for one picture.
const MAX_DECODE_BYTES: u64 = 512 << 20;

/// Why a file got no preview.
#[derive(Debug, thiserror::Error)]
pub enum NoPreview {
    #[error("not a PNG or JPEG picture")]
    NotAPicture,
    #[error("the picture cannot be read: {0}")]
    Unreadable(#[from] image::ImageError),
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
}

/// The preview of the picture at `path`, as JPEG bytes: at most
/// [`MAX_SIDE`] pixels on its longer side, proportions kept.
pub fn preview(path: &Path) -> Result<Vec<u8>, NoPreview> {
    // By what the file holds, never by its name.
    let mut start = [0u8; 16];
    let read = std::io::Read::read(&mut std::fs::File::open(path)?, &mut start)?;
    let format = match image::guess_format(&start[..read]) {
        Ok(format @ (ImageFormat::Png | ImageFormat::Jpeg)) => format,
        _ => return Err(NoPreview::NotAPicture),
    };
    let mut reader = ImageReader::open(path)?;
    reader.set_format(format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SOURCE_SIDE);
    limits.max_image_height = Some(MAX_SOURCE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let picture = reader.decode()?;
    // JPEG has no alpha: a transparent picture is shown on white, as chats do.
    // Made smaller, never larger.
    let fits = picture.width() <= MAX_SIDE && picture.height() <= MAX_SIDE;
    let small = if fits { picture } else { picture.thumbnail(MAX_SIDE, MAX_SIDE) }.into_rgba8();
    let mut flat = image::RgbImage::new(small.width(), small.height());
    for (to, from) in flat.pixels_mut().zip(small.pixels()) {
        let [r, g, b, a] = from.0;
        let over_white = |c: u8| ((c as u16 * a as u16 + 255 * (255 - a as u16)) / 255) as u8;
        *to = image::Rgb([over_white(r), over_white(g), over_white(b)]);
    }
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(Cursor::new(&mut jpeg), 80).encode_image(&flat)?;
    Ok(jpeg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_png(path: &Path, width: u32, height: u32) {
        let picture =
            image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
        picture.save_with_format(path, ImageFormat::Png).unwrap();
    }

    #[test]
    fn a_picture_becomes_a_small_jpeg_of_the_same_proportions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wide.png");
        write_png(&path, 1200, 800);
        let jpeg = preview(&path).unwrap();
        let decoded = image::load_from_memory_with_format(&jpeg, ImageFormat::Jpeg).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (320, 213));
        // A small picture is not made larger.
        let small = dir.path().join("icon.png");
        write_png(&small, 40, 90);
        let decoded = image::load_from_memory(&preview(&small).unwrap()).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (40, 90));
    }

    #[test]
    fn what_is_not_a_readable_picture_gets_no_preview() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("notes.png");
        std::fs::write(&text, "not a picture at all, whatever its name says").unwrap();
        assert!(matches!(preview(&text), Err(NoPreview::NotAPicture)));
        // A PNG that claims to be 100,000 pixels square is refused before
        // anything is allocated for it.
        let bomb = dir.path().join("bomb.png");
        let mut header = Vec::new();
        header.extend_from_slice(b"\x89PNG\r\n\x1a\n");
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(b"IHDR");
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        header.extend_from_slice(&13u32.to_be_bytes());
        header.extend_from_slice(&ihdr);
        header.extend_from_slice(&crc32(&ihdr).to_be_bytes());
        std::fs::write(&bomb, &header).unwrap();
        let refused = preview(&bomb);
        assert!(matches!(refused, Err(NoPreview::Unreadable(image::ImageError::Limits(_)))), "{refused:?}");
        // A picture cut short does not decode.
        let cut = dir.path().join("cut.png");
        write_png(&cut, 300, 300);
        let whole = std::fs::read(&cut).unwrap();
        std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
        assert!(matches!(preview(&cut), Err(NoPreview::Unreadable(_))));
    }

    /// PNG's chunk checksum (CRC-32, ISO 3309), for the hand-made header.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }
}
