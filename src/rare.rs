//! Fields that most values leave empty, kept in a box made when the first is set.
//!
//! Contract: a [`RareBox`] reads as its type's [`Rare::NONE`] until written, and compares
//! by what it reads, so a box whose fields were all set back to none equals no box: the
//! report shows them alike. Why: connection records and requests are kept to the end of a
//! run, and fields most of them leave empty were a good part of their size (an exchange's
//! proxy headers and resets, a TLS connection's alerts and stop reasons). The box may also
//! be an `Arc`, for a value set once and shared (a ClientHello's lists).

use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

/// A type whose empty value can be read without a box.
pub trait Rare: Default + PartialEq + 'static {
    /// The value with every field empty.
    const NONE: &'static Self;
}

#[derive(Clone, Debug)]
pub struct RareBox<T, P = Box<T>>(Option<P>, PhantomData<fn() -> T>);

impl<T, P> Default for RareBox<T, P> {
    fn default() -> Self {
        RareBox(None, PhantomData)
    }
}

impl<T: Rare, P: Deref<Target = T>> RareBox<T, P> {
    pub fn read(&self) -> &T {
        self.0.as_deref().unwrap_or(T::NONE)
    }

    /// Whether the box was made (a field was set, maybe back to none since).
    pub fn is_made(&self) -> bool {
        self.0.is_some()
    }
}

impl<T: Rare> RareBox<T> {
    /// The fields, for writing: the box is made now if it was not.
    pub fn write(&mut self) -> &mut T {
        self.0.get_or_insert_with(Box::default)
    }
}

impl<T: Rare> RareBox<T, Arc<T>> {
    pub fn shared(v: Arc<T>) -> Self {
        RareBox(Some(v), PhantomData)
    }
}

impl<T: Rare, P: Deref<Target = T>> PartialEq for RareBox<T, P> {
    fn eq(&self, other: &Self) -> bool {
        self.read() == other.read()
    }
}

impl<T: Rare, P: Deref<Target = T>> Eq for RareBox<T, P> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default, PartialEq, Debug)]
    struct Few {
        note: Option<String>,
    }

    impl Rare for Few {
        const NONE: &'static Self = &Few { note: None };
    }

    #[test]
    fn reads_empty_until_written_and_compares_by_what_it_reads() {
        let mut a: RareBox<Few> = RareBox::default();
        assert_eq!(a.read(), &Few::default());
        a.write().note = Some("x".into());
        assert_eq!(a.read().note.as_deref(), Some("x"));
        assert_ne!(a, RareBox::default());
        a.write().note = None;
        assert_eq!(a, RareBox::default());
        // Shared: an empty value equals none too.
        let shared: RareBox<Few, Arc<Few>> = RareBox::shared(Arc::new(Few::default()));
        assert!(shared.is_made() && shared == RareBox::default());
    }
}
