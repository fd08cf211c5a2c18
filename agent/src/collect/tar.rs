//! A minimal ustar (POSIX.1-1988) writer: regular files only, names up to
//! 100 bytes. Enough for a log bundle that `tar -xf` (GNU, bsdtar, Windows
//! 10+ tar.exe) and every archive tool open; no crate in the lock file
//! writes tar, and this is smaller than adding one.

const BLOCK: usize = 512;

/// A ustar archive being built in memory.
#[derive(Debug, Default)]
pub struct TarWriter {
    bytes: Vec<u8>,
}

/// `value` as NUL-terminated octal, filling `field`.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    // A value too large for the field keeps its low digits; sizes are
    // bounded far below 8 GiB (11 octal digits) by the bundle cap.
    let start = text.len().saturating_sub(digits);
    field[..digits].copy_from_slice(&text.as_bytes()[start..]);
    field[digits] = 0;
}

impl TarWriter {
    pub fn new() -> Self {
        TarWriter::default()
    }

    /// Appends one regular file (mode 0644). `name` is cut to 100 bytes at
    /// a character boundary.
    pub fn append(&mut self, name: &str, modified_unix: u64, contents: &[u8]) {
        let mut cut = name.len().min(100);
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut header = [0u8; BLOCK];
        header[..cut].copy_from_slice(&name.as_bytes()[..cut]);
        octal(&mut header[100..108], 0o644);
        octal(&mut header[108..116], 0);
        octal(&mut header[116..124], 0);
        octal(&mut header[124..136], contents.len() as u64);
        octal(&mut header[136..148], modified_unix);
        header[156] = b'0';
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        // The checksum is computed with its own field read as spaces.
        header[148..156].copy_from_slice(b"        ");
        let sum: u64 = header.iter().map(|byte| u64::from(*byte)).sum();
        let text = format!("{sum:06o}\0 ");
        header[148..156].copy_from_slice(text.as_bytes());
        self.bytes.extend_from_slice(&header);
        self.bytes.extend_from_slice(contents);
        let padding = (BLOCK - contents.len() % BLOCK) % BLOCK;
        self.bytes.resize(self.bytes.len() + padding, 0);
    }

    /// The archive with its end marker (two zero blocks).
    pub fn finish(mut self) -> Vec<u8> {
        self.bytes.resize(self.bytes.len() + 2 * BLOCK, 0);
        self.bytes
    }

    /// Bytes an entry of `size` adds (header and padding).
    #[cfg(test)]
    pub fn entry_size(size: usize) -> usize {
        BLOCK + size.div_ceil(BLOCK) * BLOCK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_carry_name_size_and_a_valid_checksum() {
        let mut tar = TarWriter::new();
        tar.append("01-update.log", 1_700_000_000, b"hello\n");
        let bytes = tar.finish();
        assert_eq!(bytes.len(), TarWriter::entry_size(6) + 1024);
        assert_eq!(&bytes[..13], b"01-update.log");
        assert_eq!(&bytes[124..136], b"00000000006\0");
        assert_eq!(&bytes[257..263], b"ustar\0");
        let stored = std::str::from_utf8(&bytes[148..154]).expect("octal");
        let mut header = bytes[..512].to_vec();
        header[148..156].copy_from_slice(b"        ");
        let sum: u64 = header.iter().map(|byte| u64::from(*byte)).sum();
        assert_eq!(u64::from_str_radix(stored, 8).expect("octal"), sum);
        assert_eq!(&bytes[512..518], b"hello\n");
        assert!(bytes[1024..].iter().all(|byte| *byte == 0));
    }

    #[test]
    fn long_names_are_cut_on_a_character_boundary() {
        let mut tar = TarWriter::new();
        let name = "ログ".repeat(40);
        tar.append(&name, 0, b"");
        let bytes = tar.finish();
        let end = bytes[..100].iter().position(|byte| *byte == 0).unwrap_or(100);
        assert!(std::str::from_utf8(&bytes[..end]).is_ok());
        assert_eq!(end, 99);
    }
}
