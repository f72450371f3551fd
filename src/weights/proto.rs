//! A minimal protobuf wire format: a reader and a writer, just enough for the tensor bundle
//! protos (`BundleHeaderProto`, `BundleEntryProto`) and `tf.train.Example`. Every read is
//! bounds-checked; malformed input yields `None`.

/// A field's value as it appears on the wire.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Field<'a> {
    Varint(u64),
    /// A 64-bit fixed field (skipped by every message read here).
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// Reads a base-128 varint at `*pos`, advancing it. At most 10 bytes.
pub(crate) fn read_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Appends `v` as a base-128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Bytes `put_varint(v)` writes.
pub(crate) fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Wire types of a field key.
pub(crate) const VARINT: u8 = 0;
pub(crate) const LEN: u8 = 2;
pub(crate) const FIXED32: u8 = 5;

/// Appends a field key (number and wire type).
pub(crate) fn put_key(out: &mut Vec<u8>, number: u32, wire_type: u8) {
    put_varint(out, u64::from(number) << 3 | u64::from(wire_type));
}

/// Appends a length-delimited field (bytes, string, sub-message, packed values).
pub(crate) fn put_bytes(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_key(out, number, LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Iterates `(field number, value)` over a message; yields `Err(())` once on malformed
/// input and then stops.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            failed: false,
        }
    }

    fn next_field(&mut self) -> Option<(u64, Field<'a>)> {
        let key = read_varint(self.buf, &mut self.pos)?;
        let number = key >> 3;
        let field = match key & 7 {
            0 => Field::Varint(read_varint(self.buf, &mut self.pos)?),
            1 => {
                self.buf.get(self.pos..self.pos.checked_add(8)?)?;
                self.pos += 8;
                Field::Fixed64
            }
            2 => {
                let len = usize::try_from(read_varint(self.buf, &mut self.pos)?).ok()?;
                let end = self.pos.checked_add(len)?;
                let b = self.buf.get(self.pos..end)?;
                self.pos = end;
                Field::Bytes(b)
            }
            5 => {
                let b = self.buf.get(self.pos..self.pos.checked_add(4)?)?;
                self.pos += 4;
                Field::Fixed32(u32::from_le_bytes(b.try_into().ok()?))
            }
            _ => return None,
        };
        Some((number, field))
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<(u64, Field<'a>), ()>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        match self.next_field() {
            Some(f) => Some(Ok(f)),
            None => {
                self.failed = true;
                Some(Err(()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_rejects_truncation() {
        // field 1 varint 300, field 2 bytes "hi", field 6 fixed32 7
        let msg = [0x08, 0xac, 0x02, 0x12, 0x02, b'h', b'i', 0x35, 7, 0, 0, 0];
        let fields: Vec<_> = Reader::new(&msg).collect::<Result<_, _>>().unwrap();
        assert!(matches!(fields[0], (1, Field::Varint(300))));
        assert!(matches!(fields[1], (2, Field::Bytes(b"hi"))));
        assert!(matches!(fields[2], (6, Field::Fixed32(7))));
        for cut in 1..msg.len() {
            let r: Result<Vec<_>, _> = Reader::new(&msg[..cut]).collect();
            if cut != 3 && cut != 7 {
                assert!(r.is_err(), "cut {cut}");
            }
        }
        let mut pos = 0;
        assert_eq!(read_varint(&[0xff; 11], &mut pos), None);
    }

    #[test]
    fn writes_what_it_reads() {
        for v in [0, 1, 127, 128, 300, 1 << 35, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            let mut pos = 0;
            assert_eq!(read_varint(&out, &mut pos), Some(v));
            assert_eq!(pos, out.len());
        }
        let mut msg = Vec::new();
        put_key(&mut msg, 1, VARINT);
        put_varint(&mut msg, 300);
        put_bytes(&mut msg, 2, b"hi");
        put_key(&mut msg, 6, FIXED32);
        msg.extend_from_slice(&7u32.to_le_bytes());
        assert_eq!(
            msg,
            [0x08, 0xac, 0x02, 0x12, 0x02, b'h', b'i', 0x35, 7, 0, 0, 0]
        );
    }
}
