//! Request bodies as every ingest endpoint reads them: whole, within a size
//! on the wire, and decompressed (gzip, deflate, br, zstd) within a size
//! after decompression, so a compression bomb is refused with 413 having
//! expanded no further than the limit.

use std::io::Read;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use http_body_util::BodyExt;

use crate::web::error::ApiError;

/// Reads `body` (already bounded on the wire by the route's limit layer) and
/// decompresses it as `Content-Encoding` says, to at most `limit` bytes.
pub async fn read(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let raw = body.collect().await.map_err(|e| too_large_or_bad(&e, limit))?.to_bytes();
    if matches!(encoding.as_str(), "" | "identity") {
        if raw.len() > limit {
            return Err(too_large(limit));
        }
        return Ok(raw);
    }
    // Decompression is CPU work: off the async workers.
    tokio::task::spawn_blocking(move || decompress(&encoding, &raw, limit))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
}

fn too_large(limit: usize) -> ApiError {
    ApiError::PayloadTooLarge(format!("the body is larger than {limit} bytes (decompressed); send smaller requests"))
}

/// Decompresses `raw`, refusing to expand past `limit`.
pub fn decompress(encoding: &str, raw: &[u8], limit: usize) -> Result<Bytes, ApiError> {
    let reader: Box<dyn Read + '_> = match encoding {
        "gzip" | "x-gzip" => Box::new(flate2::read::MultiGzDecoder::new(raw)),
        // HTTP's "deflate" is zlib-wrapped; some clients send it raw.
        "deflate" if raw.first().is_some_and(|b| b & 0x0f == 8) => Box::new(flate2::read::ZlibDecoder::new(raw)),
        "deflate" => Box::new(flate2::read::DeflateDecoder::new(raw)),
        "br" => Box::new(brotli_decompressor::Decompressor::new(raw, 4096)),
        "zstd" => {
            let mut d = zstd::stream::read::Decoder::new(raw)
                .map_err(|e| ApiError::BadRequest(format!("the body is not valid zstd: {e}")))?;
            // A frame may ask for a 128 MiB window; 16 MiB is plenty for a request body.
            d.window_log_max(24).map_err(|e| ApiError::Internal(e.into()))?;
            Box::new(d)
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "Content-Encoding {other:?} is not supported; send the body plain or with gzip, deflate, br or zstd"
            )));
        }
    };
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid {encoding}: {e}")))?;
    if out.len() > limit {
        return Err(too_large(limit));
    }
    Ok(Bytes::from(out))
}

/// A body the size limit cut off is 413; anything else that broke the read is 400.
/// The limit's own error type is looked for in the chain, not its wording.
pub fn too_large_or_bad(e: &axum::Error, limit: usize) -> ApiError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return too_large(limit);
        }
        cause = c.source();
    }
    ApiError::BadRequest(format!("could not read the request body: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn all_encodings(data: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(data).unwrap();
        let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        zl.write_all(data).unwrap();
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        raw.write_all(data).unwrap();
        let mut br = Vec::new();
        {
            let mut w = brotli_writer(&mut br);
            w.write_all(data).unwrap();
        }
        vec![
            ("gzip", gz.finish().unwrap()),
            ("deflate", zl.finish().unwrap()),
            ("deflate", raw.finish().unwrap()),
            ("zstd", zstd::encode_all(data, 1).unwrap()),
            ("br", br),
        ]
    }

    /// A tiny brotli encoder is not in our dependencies; an uncompressed
    /// brotli stream (meta-blocks of stored bytes) is valid brotli.
    fn brotli_writer(out: &mut Vec<u8>) -> impl Write + '_ {
        struct Stored<'a>(&'a mut Vec<u8>, Vec<u8>);
        impl Write for Stored<'_> {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.1.extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        impl Drop for Stored<'_> {
            fn drop(&mut self) {
                self.0.extend(brotli_stored(&self.1));
            }
        }
        Stored(out, Vec::new())
    }

    /// WBITS=16 (one 0 bit), then uncompressed meta-blocks of ≤ 65536 bytes, then an empty last block.
    fn brotli_stored(data: &[u8]) -> Vec<u8> {
        let mut bits: Vec<bool> = vec![false]; // WBITS = 16
        let push = |bits: &mut Vec<bool>, v: u64, n: u32| (0..n).for_each(|i| bits.push(v >> i & 1 == 1));
        let mut out = Vec::new();
        for chunk in data.chunks(65536) {
            push(&mut bits, 0, 1); // ISLAST = 0
            push(&mut bits, 0, 2); // MNIBBLES = 4
            push(&mut bits, (chunk.len() - 1) as u64, 16); // MLEN - 1
            push(&mut bits, 1, 1); // ISUNCOMPRESSED
            while !bits.len().is_multiple_of(8) {
                bits.push(false);
            }
            for byte in bits.chunks(8) {
                out.push(byte.iter().enumerate().fold(0u8, |a, (i, b)| a | (u8::from(*b) << i)));
            }
            bits.clear();
            out.extend_from_slice(chunk);
        }
        push(&mut bits, 1, 1); // ISLAST
        push(&mut bits, 1, 1); // ISLASTEMPTY
        while !bits.len().is_multiple_of(8) {
            bits.push(false);
        }
        for byte in bits.chunks(8) {
            out.push(byte.iter().enumerate().fold(0u8, |a, (i, b)| a | (u8::from(*b) << i)));
        }
        out
    }

    #[test]
    fn every_encoding_reads_back_and_bombs_stop_at_the_limit() {
        let data = b"{\"event_id\":\"9b2d5c1e7f0a4c3d8e6b1a2f3c4d5e6f\"}\n".repeat(100);
        for (enc, body) in all_encodings(&data) {
            assert_eq!(decompress(enc, &body, 1 << 20).unwrap(), data.as_slice(), "{enc}");
            let err = decompress(enc, &body, 100).unwrap_err();
            assert!(matches!(err, ApiError::PayloadTooLarge(_)), "{enc}: {err}");
        }
        // A real bomb: 64 MiB of zeros in a few KiB, refused at 1 MiB.
        let zeros = vec![0u8; 64 << 20];
        let bomb = zstd::encode_all(&zeros[..], 3).unwrap();
        assert!(bomb.len() < 64 << 10);
        assert!(matches!(decompress("zstd", &bomb, 1 << 20), Err(ApiError::PayloadTooLarge(_))));
        assert!(matches!(decompress("gzip", b"not gzip", 1 << 20), Err(ApiError::BadRequest(_))));
        assert!(decompress("compress", b"x", 10).unwrap_err().to_string().contains("gzip, deflate, br or zstd"));
    }
}
