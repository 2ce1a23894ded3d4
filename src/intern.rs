//! Values that many connections repeat, kept once per thread and handed out as `Arc`s.
//!
//! Contract: [`Interner::get`] returns an `Arc` equal to its argument, shared with earlier
//! calls that passed an equal value while it was kept. Sharing never shows in a report: a
//! shared value serializes and compares as the value. An interner keeps at most
//! [`MAX_KEPT`] values of [`MAX_KEPT_BYTES`] in all, and is emptied when either would be
//! passed; values already handed out stay valid. Values over [`MAX_VALUE`] bytes are not
//! kept: a hostile peer could otherwise keep large values alive after every connection let
//! go of them.
//!
//! Why: a client sends the same offered versions, groups and ALPN list, SNI, request
//! fields and HPACK table entries on each of its connections. Kept per connection, each was
//! a small allocation (32 bytes or more with the allocator's header) for as long as the
//! connection was open, and again in its record.

/// Texts many records repeat (request fields): a pointer of 8 bytes.
pub use arcstr::ArcStr;
use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

/// Values kept per interner.
pub const MAX_KEPT: usize = 4096;
/// Bytes of values kept per interner.
pub const MAX_KEPT_BYTES: usize = 1 << 20;
/// Longer values are handed out unshared.
pub const MAX_VALUE: usize = 1024;

/// Bytes a value keeps, with what it points to: what the interner's bounds count.
pub trait Weigh {
    fn weight(&self) -> usize;
}

impl Weigh for str {
    fn weight(&self) -> usize {
        self.len()
    }
}

impl Weigh for [u8] {
    fn weight(&self) -> usize {
        self.len()
    }
}

/// An interner of `T`s, handing them out as `H`: an `Arc<T>`, or for texts an
/// [`arcstr::ArcStr`], a pointer half the size of an `Arc<str>` (requests keep seven texts
/// each, for as long as the report is not written).
pub struct Interner<T: ?Sized, H = Arc<T>> {
    kept: HashSet<H, foldhash::fast::RandomState>,
    bytes: usize,
    of: PhantomData<fn(&T)>,
}

impl<T: ?Sized, H> Default for Interner<T, H> {
    fn default() -> Self {
        Interner {
            kept: HashSet::default(),
            bytes: 0,
            of: PhantomData,
        }
    }
}

impl<T, H> Interner<T, H>
where
    T: ?Sized + Eq + Hash + Weigh,
    H: Borrow<T> + Clone + Eq + Hash + for<'a> From<&'a T>,
{
    /// A shared copy of `v`.
    pub fn get(&mut self, v: &T) -> H {
        let size = v.weight();
        if size > MAX_VALUE {
            return v.into();
        }
        if let Some(kept) = self.kept.get(v) {
            return kept.clone();
        }
        if self.kept.len() >= MAX_KEPT || self.bytes + size > MAX_KEPT_BYTES {
            *self = Interner::default();
        }
        let new = H::from(v);
        self.kept.insert(new.clone());
        self.bytes += size;
        new
    }

    pub fn len(&self) -> usize {
        self.kept.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }
}

/// Declares a thread's interner of `T`s and a function that interns through it.
macro_rules! thread_interner {
    ($(#[$doc:meta])* $vis:vis fn $name:ident($t:ty)) => {
        $crate::intern::thread_interner!($(#[$doc])* $vis fn $name($t) -> std::sync::Arc<$t>);
    };
    ($(#[$doc:meta])* $vis:vis fn $name:ident($t:ty) -> $h:ty) => {
        $(#[$doc])*
        $vis fn $name(v: &$t) -> $h {
            thread_local! {
                static KEPT: std::cell::RefCell<$crate::intern::Interner<$t, $h>> =
                    std::cell::RefCell::new($crate::intern::Interner::default());
            }
            KEPT.with(|k| k.borrow_mut().get(v))
        }
    };
}
pub(crate) use thread_interner;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_are_shared_and_the_interner_stays_bounded() {
        let mut i: Interner<str> = Interner::default();
        let a = i.get("example.test");
        let b = i.get(&String::from("example.test"));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&*a, "example.test");
        for n in 0..MAX_KEPT + 5 {
            i.get(&n.to_string());
            assert!(i.len() <= MAX_KEPT);
        }
        // Emptied when full: still equal, if no longer shared.
        assert_eq!(&*i.get("example.test"), &*a);
        // Long values are not kept, and the bytes kept stay bounded.
        let long = "x".repeat(MAX_VALUE + 1);
        assert!(!Arc::ptr_eq(&i.get(&long), &i.get(&long)));
        let mid = |n: usize| format!("{n:04}{}", "y".repeat(MAX_VALUE - 4));
        for n in 0..2 * MAX_KEPT_BYTES / MAX_VALUE {
            i.get(&mid(n));
            assert!(i.bytes <= MAX_KEPT_BYTES);
        }
        // A value's weight counts what it points to.
        #[derive(PartialEq, Eq, Hash, Clone)]
        struct Names(Vec<String>);
        impl Weigh for Names {
            fn weight(&self) -> usize {
                self.0.iter().map(|n| n.len()).sum()
            }
        }
        impl From<&Names> for Arc<Names> {
            fn from(n: &Names) -> Self {
                Arc::new(n.clone())
            }
        }
        let mut names: Interner<Names> = Interner::default();
        let many = Names(vec!["n".repeat(MAX_VALUE / 2); 3]);
        assert!(!Arc::ptr_eq(&names.get(&many), &names.get(&many)));
        let few = Names(vec!["n".repeat(MAX_VALUE / 2)]);
        assert!(Arc::ptr_eq(&names.get(&few), &names.get(&few)));
        let mut texts: Interner<str, arcstr::ArcStr> = Interner::default();
        let t = texts.get("example.test");
        assert!(arcstr::ArcStr::ptr_eq(&t, &texts.get("example.test")));
        assert_eq!(t, "example.test");
        let mut lists: Interner<[u8]> = Interner::default();
        let l = lists.get(&[0x1d, 0x17][..]);
        assert!(Arc::ptr_eq(&l, &lists.get(&vec![0x1d, 0x17][..])));
    }
}
