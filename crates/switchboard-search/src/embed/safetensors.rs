//! A reader for the safetensors format, enough for a BERT checkpoint: an 8-byte
//! little-endian header length, a JSON header mapping tensor names to `dtype`, `shape` and
//! `data_offsets` (relative to the end of the header), then the raw little-endian data.
//! F32, F16 and BF16 tensors are read (as f32), others skipped; anything malformed is an
//! error, never a panic.

use std::collections::HashMap;

use serde_json::Value;

/// One tensor, row-major, as f32.
#[derive(Debug, Clone)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// The largest header accepted (the format's own limit is 100 MB; real ones are a few KB).
const MAX_HEADER: u64 = 100 << 20;

/// Parses a whole safetensors file.
pub fn parse(bytes: &[u8]) -> Result<HashMap<String, Tensor>, String> {
    let len_bytes: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or("file shorter than its 8-byte header length")?;
    let header_len = u64::from_le_bytes(len_bytes);
    if header_len > MAX_HEADER || header_len > bytes.len() as u64 - 8 {
        return Err(format!("header length {header_len} is out of range"));
    }
    let header_end = 8 + header_len as usize;
    let header: Value = serde_json::from_slice(&bytes[8..header_end])
        .map_err(|e| format!("header is not JSON: {e}"))?;
    let header = header.as_object().ok_or("header is not a JSON object")?;
    let data = &bytes[header_end..];
    let mut out = HashMap::new();
    for (name, info) in header {
        if name == "__metadata__" {
            continue;
        }
        let bad = |what: &str| format!("tensor {name}: {what}");
        let dtype = info
            .get("dtype")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no dtype"))?;
        let shape: Vec<usize> = info
            .get("shape")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no shape"))?
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("shape is not a list of integers"))?;
        let offsets = info
            .get("data_offsets")
            .and_then(Value::as_array)
            .filter(|o| o.len() == 2)
            .and_then(|o| Some((o[0].as_u64()? as usize, o[1].as_u64()? as usize)))
            .ok_or_else(|| bad("data_offsets is not [begin, end]"))?;
        let (begin, end) = offsets;
        if begin > end || end > data.len() {
            return Err(bad("data_offsets outside the file"));
        }
        let raw = &data[begin..end];
        let count = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| bad("shape overflows"))?;
        let width = match dtype {
            "F32" => 4,
            "F16" | "BF16" => 2,
            // Integer buffers (BERT's `position_ids`) are not weights: skipped.
            _ => continue,
        };
        if count.checked_mul(width) != Some(raw.len()) {
            return Err(bad("data length does not match its shape"));
        }
        let data: Vec<f32> = match dtype {
            "F32" => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            "BF16" => raw
                .chunks_exact(2)
                .map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16))
                .collect(),
            _ => raw
                .chunks_exact(2)
                .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
        };
        out.insert(name.clone(), Tensor { shape, data });
    }
    Ok(out)
}

/// IEEE half precision to single.
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match exp {
        0 if frac == 0 => sign,
        0 => {
            // Subnormal: normalise.
            let mut e = 127 - 15 + 1;
            let mut f = frac;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((f & 0x3ff) << 13)
        }
        0x1f => sign | 0x7f80_0000 | (frac << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut v = (header.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(header.as_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn f32_and_f16_tensors_are_read_little_endian() {
        let mut data = Vec::new();
        data.extend_from_slice(&1.5f32.to_le_bytes());
        data.extend_from_slice(&(-2.0f32).to_le_bytes());
        data.extend_from_slice(&0x3c00u16.to_le_bytes()); // 1.0 in f16
        let bytes = file(
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F16","shape":[1,1],"data_offsets":[8,10]},"__metadata__":{"format":"pt"}}"#,
            &data,
        );
        let t = parse(&bytes).unwrap();
        assert_eq!(t["a"].data, [1.5, -2.0]);
        assert_eq!(t["b"].shape, [1, 1]);
        assert_eq!(t["b"].data, [1.0]);
    }

    #[test]
    fn truncated_or_inconsistent_files_are_errors() {
        assert!(parse(b"\x01\x00").is_err());
        assert!(parse(&file("{", b"")).is_err());
        let past_end = file(
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
            &[0; 4],
        );
        assert!(parse(&past_end).unwrap_err().contains("outside"));
        let wrong_shape = file(
            r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
            &[0; 8],
        );
        assert!(parse(&wrong_shape).unwrap_err().contains("shape"));
        let mut huge = u64::MAX.to_le_bytes().to_vec();
        huge.extend_from_slice(b"{}");
        assert!(parse(&huge).is_err());
    }
}
