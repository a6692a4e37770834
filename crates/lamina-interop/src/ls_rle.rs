//! Label Studio's brush masks: the bit-packed run-length code of @thi.ng/rle-pack over a whole RGBA
//! image, row-major, whose alpha channel is the mask. Not COCO RLE.
//!
//! The stream is read most significant bit first. Header: the number of values (32 bits), the word
//! size − 1 (5 bits), four run-size classes − 1 (4 bits each). Then chunks until that many values are
//! out: a repeat flag (1 bit), a size-class index (2 bits), the chunk's value count − 1 (in as many bits
//! as that class says), then one word repeated count times, or count words in turn.
//!
//! Hand-written: no maintained Rust crate reads or writes this format (the references are rle-pack's
//! TypeScript and label-studio-converter's `brush.py`). Writing follows the converter byte for byte, so
//! its decoder and Label Studio's read what we write exactly as they read the converter's output.

use lamina_core::mask::Mask;

use crate::InteropError;

/// What label-studio-converter writes: 8-bit words, run counts of 3, 4, 8 or 16 bits.
const WORD_SIZE: u32 = 8;
const RUN_SIZES: [u32; 4] = [3, 4, 8, 16];
/// The longest run one chunk of the 16-bit class holds.
const LONGEST_CHUNK: u64 = 1 << 16;
const HEADER_BITS: u64 = 32 + 5 + 4 * 4;

/// The header of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub count: u32,
    /// 1..=32: five bits hold the size − 1, so a larger word size cannot be written at all.
    pub word_size: u32,
    /// 1..=16 each, for the same reason.
    pub run_sizes: [u32; 4],
}

/// Decodes a stream to its values (RGBA bytes, for a brush mask). Bytes past the last chunk are
/// ignored: the converter always pads with 1 to 8 zero bits.
pub fn decode(bytes: &[u8]) -> Result<Vec<u32>, InteropError> {
    let header = read_header(bytes)?;
    // Grown as chunks arrive rather than sized from the header, which is not trusted.
    let mut out = Vec::with_capacity((header.count as usize).min(bytes.len() * 8));
    decode_runs(bytes, |_, end, value| out.resize(end as usize, value))?;
    Ok(out)
}

/// Encodes bytes as label-studio-converter's `encode_rle` does, bit for bit.
pub fn encode(values: &[u8]) -> Vec<u8> {
    let mut runs: Vec<(u8, u64)> = Vec::new();
    for &v in values {
        match runs.last_mut() {
            Some((last, n)) if *last == v => *n += 1,
            _ => runs.push((v, 1)),
        }
    }
    encode_runs(values.len() as u64, runs)
}

/// A mask as Label Studio stores a brush region: each pixel four RGBA values, 255 inside and 0 outside.
pub fn mask_to_rle(mask: &Mask) -> Vec<u8> {
    let mut runs: Vec<(u8, u64)> = Vec::new();
    for &pixel in &mask.data {
        let value = if pixel != 0 { 255 } else { 0 };
        match runs.last_mut() {
            Some((last, n)) if *last == value => *n += 4,
            _ => runs.push((value, 4)),
        }
    }
    encode_runs(mask.data.len() as u64 * 4, runs)
}

/// A brush region's mask. A pixel is inside when its alpha (the 4th value) is at least half the word's
/// range (128 for 8-bit words): Label Studio's brush paints an antialiased canvas, so stroke edges carry
/// partial alpha, and half coverage is where the stroke's edge is.
pub fn rle_to_mask(bytes: &[u8], width: u32, height: u32) -> Result<Mask, InteropError> {
    let header = read_header(bytes)?;
    let needed = u64::from(width) * u64::from(height) * 4;
    if u64::from(header.count) != needed {
        return Err(InteropError::new(
            "rle",
            format!(
                "rle has {} values, a {width}×{height} image needs {needed}",
                header.count
            ),
        ));
    }
    let threshold = 1u64 << (header.word_size - 1);
    let mut mask = Mask::new(width, height);
    decode_runs(bytes, |start, end, value| {
        if u64::from(value) < threshold {
            return;
        }
        // The alpha values of [start, end): positions 3, 7, 11, ...
        let first_alpha = start + (3 + 4 - start % 4) % 4;
        for position in (first_alpha..end).step_by(4) {
            if let Some(pixel) = mask.data.get_mut((position / 4) as usize) {
                *pixel = 1;
            }
        }
    })?;
    Ok(mask)
}

/// Reads and checks the header, including that the input could hold that many values at all.
pub fn read_header(bytes: &[u8]) -> Result<Header, InteropError> {
    let mut input = BitReader::new(bytes);
    let truncated = || {
        InteropError::new(
            "rle header",
            format!(
                "the stream is {} bytes; its header alone needs 7",
                bytes.len()
            ),
        )
    };
    let count = input.read(32).ok_or_else(truncated)?;
    let word_size = input.read(5).ok_or_else(truncated)? + 1;
    let mut run_sizes = [0; 4];
    for size in &mut run_sizes {
        *size = input.read(4).ok_or_else(truncated)? + 1;
    }
    let header = Header {
        count,
        word_size,
        run_sizes,
    };
    // Each chunk takes at least the flag, the class, the shortest count and one word, and gives at
    // most 2^longest values: a count beyond that is a corrupt or hostile header, refused before any
    // memory is spent on it.
    let shortest_chunk =
        3 + u64::from(run_sizes.iter().min().copied().unwrap_or(1)) + u64::from(word_size);
    let longest_run = 1u64 << run_sizes.iter().max().copied().unwrap_or(1);
    let most = input.remaining() / shortest_chunk * longest_run;
    if u64::from(count) > most {
        return Err(InteropError::new(
            "rle header",
            format!(
                "it declares {count} values, but {} bytes can hold at most {most}",
                bytes.len()
            ),
        ));
    }
    Ok(header)
}

/// Walks the chunks, calling `emit(start, end, value)` for each run of equal values (a literal
/// chunk's values one by one), in order, covering exactly 0..count.
fn decode_runs(bytes: &[u8], mut emit: impl FnMut(u64, u64, u32)) -> Result<Header, InteropError> {
    let header = read_header(bytes)?;
    let count = u64::from(header.count);
    let mut input = BitReader::new(bytes);
    input.skip(HEADER_BITS);
    let mut next = 0u64;
    while next < count {
        let chunk_at = input.position / 8;
        let truncated = |next: u64| {
            InteropError::new(
                format!("rle byte {chunk_at}"),
                format!("the stream ends at value {next} of the {count} declared"),
            )
        };
        let repeat = input.read(1).ok_or_else(|| truncated(next))? == 1;
        let class = input.read(2).ok_or_else(|| truncated(next))? as usize;
        let size = header.run_sizes.get(class).copied().unwrap_or(1);
        let run = u64::from(input.read(size).ok_or_else(|| truncated(next))?) + 1;
        let end = next + run;
        if end > count {
            return Err(InteropError::new(
                format!("rle byte {chunk_at}"),
                format!("a chunk of {run} values at value {next} goes past the {count} declared"),
            ));
        }
        if repeat {
            let value = input
                .read(header.word_size)
                .ok_or_else(|| truncated(next))?;
            emit(next, end, value);
        } else {
            for i in next..end {
                let value = input.read(header.word_size).ok_or_else(|| truncated(i))?;
                emit(i, i + 1, value);
            }
        }
        next = end;
    }
    Ok(header)
}

/// Writes runs of `(value, length)` covering `count` values, chunk by chunk as the converter does: a
/// single value as a one-word literal, longer runs as repeats in the smallest class that holds them,
/// except that runs over 256 always use the 16-bit class, split into 65536-value chunks.
fn encode_runs(count: u64, runs: Vec<(u8, u64)>) -> Vec<u8> {
    let mut out = BitWriter::default();
    // Images over 2^30 pixels do not fit the format's 32-bit count; Label Studio's canvas could not
    // show one anyway. The count saturates rather than wrapping into a valid-looking smaller image.
    out.write(u32::try_from(count).unwrap_or(u32::MAX), 32);
    out.write(WORD_SIZE - 1, 5);
    for size in RUN_SIZES {
        out.write(size - 1, 4);
    }
    let chunk = |out: &mut BitWriter, repeat: bool, class: usize, length: u64, value: u8| {
        out.write(u32::from(repeat), 1);
        out.write(class as u32, 2);
        out.write((length - 1) as u32, RUN_SIZES[class]);
        out.write(u32::from(value), WORD_SIZE);
    };
    for (value, length) in runs {
        match length {
            0 => {}
            1 => chunk(&mut out, false, 0, 1, value),
            2..=8 => chunk(&mut out, true, 0, length, value),
            9..=16 => chunk(&mut out, true, 1, length, value),
            17..=256 => chunk(&mut out, true, 2, length, value),
            _ => {
                let mut left = length;
                while left > LONGEST_CHUNK {
                    chunk(&mut out, true, 3, LONGEST_CHUNK, value);
                    left -= LONGEST_CHUNK;
                }
                chunk(&mut out, true, 3, left, value);
            }
        }
    }
    // The converter pads to the next byte with 1 to 8 zero bits: a whole zero byte when already
    // aligned. Kept so the bytes match its output exactly.
    let padding = 8 - out.bits % 8;
    out.write(0, padding as u32);
    out.bytes
}

struct BitReader<'a> {
    bytes: &'a [u8],
    position: u64,
}

impl<'a> BitReader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        BitReader { bytes, position: 0 }
    }

    fn remaining(&self) -> u64 {
        (self.bytes.len() as u64 * 8).saturating_sub(self.position)
    }

    fn skip(&mut self, bits: u64) {
        self.position += bits;
    }

    /// The next `bits` (at most 32) as a number, most significant first; `None` past the end.
    fn read(&mut self, bits: u32) -> Option<u32> {
        if u64::from(bits) > self.remaining() {
            return None;
        }
        let mut value = 0u32;
        for _ in 0..bits {
            let byte = self.bytes.get((self.position / 8) as usize)?;
            let bit = (byte >> (7 - self.position % 8)) & 1;
            value = (value << 1) | u32::from(bit);
            self.position += 1;
        }
        Some(value)
    }
}

#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    bits: u64,
}

impl BitWriter {
    /// The low `bits` of `value`, most significant first.
    fn write(&mut self, value: u32, bits: u32) {
        for i in (0..bits).rev() {
            if self.bits % 8 == 0 {
                self.bytes.push(0);
            }
            if (value >> i) & 1 == 1 {
                if let Some(last) = self.bytes.last_mut() {
                    *last |= 0x80 >> (self.bits % 8);
                }
            }
            self.bits += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(values: &[u8]) {
        let encoded = encode(values);
        let decoded = decode(&encoded).unwrap();
        let expected: Vec<u32> = values.iter().map(|&v| u32::from(v)).collect();
        assert_eq!(decoded, expected);
    }

    #[test]
    fn encode_then_decode_gives_the_values_back() {
        round_trip(&[]);
        round_trip(&[7]);
        round_trip(&[0, 255, 0, 255, 0, 1, 2, 3, 4]); // alternating: one-value literals
        round_trip(&[9; 8]);
        round_trip(&[9; 9]);
        round_trip(&[9; 16]);
        round_trip(&[9; 17]);
        round_trip(&[9; 256]);
        round_trip(&[9; 257]);
        round_trip(&[9; 65536]);
        let mut long = vec![0u8; 65536 * 2 + 3]; // split into 65536, 65536, 3
        long.extend([255; 5]);
        long.push(1);
        round_trip(&long);
    }

    #[test]
    fn a_stream_computed_by_hand_from_the_spec_decodes() {
        // Header: count 5 = 0x00000005 (32 bits), word size 8 → 00111, sizes 3,4,8,16 → 0010 0011 0111 1111.
        // Chunk 1: repeat 1, class 00, count−1 = 2 → 010, word 0xff → three 255s.
        // Chunk 2: literal 0, class 00, count−1 = 1 → 001, words 0x01 0x02.
        // Bits after the header: 1 00 010 11111111  0 00 001 00000001 00000010, then zero padding.
        let bits = "00000000000000000000000000000101\
                    00111\
                    0010001101111111\
                    1000101111111100000100000001000000100";
        let bits = format!("{bits}{}", "0".repeat((8 - bits.len() % 8) % 8));
        let bytes: Vec<u8> = bits
            .as_bytes()
            .chunks(8)
            .map(|b| u8::from_str_radix(std::str::from_utf8(b).unwrap(), 2).unwrap())
            .collect();
        assert_eq!(decode(&bytes).unwrap(), [255, 255, 255, 1, 2]);
    }

    #[test]
    fn output_matches_the_converter_bytes_for_a_short_input() {
        // label_studio_converter.brush.encode_rle(np.array([0, 0, 0, 0, 255, 255, 255, 255])):
        // the header (count 8, word size 8, sizes 3, 4, 8, 16), two 4-long repeats, 7 bits of padding.
        let expected = [0, 0, 0, 8, 57, 27, 252, 96, 17, 255, 128];
        assert_eq!(encode(&[0, 0, 0, 0, 255, 255, 255, 255]), expected);
    }

    #[test]
    fn a_mask_round_trips_through_its_rgba_stream() {
        let mut mask = Mask::new(5, 3);
        for (x, y) in [(0, 0), (1, 0), (4, 2), (2, 1)] {
            mask.set(x, y, true);
        }
        let rle = mask_to_rle(&mask);
        let values = decode(&rle).unwrap();
        assert_eq!(values.len(), 5 * 3 * 4);
        assert_eq!(&values[..8], &[255; 8]);
        assert_eq!(rle_to_mask(&rle, 5, 3).unwrap(), mask);
    }

    #[test]
    fn partial_alpha_is_inside_from_half_coverage() {
        // Two pixels, alpha 127 and 128 (antialiased edge): only the second is inside.
        let rle = encode(&[255, 255, 255, 127, 255, 255, 255, 128]);
        let mask = rle_to_mask(&rle, 2, 1).unwrap();
        assert_eq!(mask.data, [0, 1]);
    }

    #[test]
    fn bad_streams_are_refused_with_the_reason() {
        let message = |r: Result<Vec<u32>, InteropError>| r.unwrap_err().to_string();
        assert!(message(decode(&[0, 0, 0])).contains("header alone needs 7"));
        // The last chunk cut off.
        let full = encode(&[1, 2, 3, 4, 5, 6]);
        assert!(message(decode(&full[..full.len() - 3])).contains("ends at value"));
        // A header claiming 4 G values over a few bytes.
        let mut huge = encode(&[0; 8]);
        huge[..4].copy_from_slice(&[0xff; 4]);
        assert!(message(decode(&huge)).contains("can hold at most"));
        // A count of 3 but one chunk of 8 values.
        let mut short = encode(&[0; 8]);
        short[..4].copy_from_slice(&[0, 0, 0, 3]);
        assert!(message(decode(&short)).contains("goes past the 3 declared"));
        let wrong_size = rle_to_mask(&encode(&[0; 400]), 64, 64).unwrap_err();
        assert_eq!(
            wrong_size.message,
            "rle has 400 values, a 64×64 image needs 16384"
        );
    }
}
