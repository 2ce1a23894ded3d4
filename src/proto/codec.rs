//! A bounds-checked reader over wire bytes (after rustls' `msgs::codec::Reader`).
//!
//! Every accessor returns `None` instead of reading past the end, so parsers built on it
//! cannot panic on short or lying input; `sub_u8`/`sub_u16`/`sub_u24` take a length-prefixed
//! vector as its own reader, so an inner length can never reach beyond its outer one.

/// Reads big-endian integers and length-prefixed vectors from a byte slice.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or(&[])
    }

    pub fn left(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    pub fn is_empty(&self) -> bool {
        self.left() == 0
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N).and_then(|b| b.try_into().ok())
    }

    pub fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[b]| b)
    }

    pub fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    pub fn u24(&mut self) -> Option<u32> {
        self.array::<3>()
            .map(|[a, b, c]| u32::from_be_bytes([0, a, b, c]))
    }

    pub fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    /// A vector with a 1-byte length prefix, as a reader of its own.
    pub fn sub_u8(&mut self) -> Option<Reader<'a>> {
        let n = self.u8()?;
        self.take(usize::from(n)).map(Reader::new)
    }

    /// A vector with a 2-byte length prefix, as a reader of its own.
    pub fn sub_u16(&mut self) -> Option<Reader<'a>> {
        let n = self.u16()?;
        self.take(usize::from(n)).map(Reader::new)
    }

    /// A vector with a 3-byte length prefix, as a reader of its own.
    pub fn sub_u24(&mut self) -> Option<Reader<'a>> {
        let n = self.u24()?;
        self.take(n as usize).map(Reader::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_refuses_to_overrun() {
        let mut r = Reader::new(&[1, 0, 2, 0, 0, 3, 9, 9, 2, 7]);
        assert_eq!(r.u8(), Some(1));
        assert_eq!(r.u16(), Some(2));
        assert_eq!(r.u24(), Some(3));
        let sub = r.sub_u8().unwrap_or_else(|| Reader::new(&[]));
        assert_eq!(sub.left(), 0);
        // A length prefix beyond the data is refused and nothing is consumed past it.
        let mut r = Reader::new(&[5, 1, 2]);
        assert!(r.sub_u8().is_none());
        let mut r = Reader::new(&[0, 2, 7, 8, 9]);
        let mut inner = r.sub_u16().unwrap();
        assert_eq!(inner.take(2), Some(&[7u8, 8][..]));
        assert_eq!(inner.u8(), None);
        assert_eq!(r.rest(), &[9]);
        assert_eq!(Reader::new(&[]).take(usize::MAX), None);
    }
}
