//! A Python `dict` keyed by question id: insertion-ordered, and a key inserted again keeps
//! its first place and takes the new value. `write_predictions` fills `OrderedDict`s this way
//! and the evaluation scripts read JSON objects this way (`json.load`: the last of repeated
//! keys wins), so repeated ids behave as in Python.

use std::collections::HashMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

/// An insertion-ordered map from question id to `V`, with Python's `dict` semantics.
#[derive(Debug, Clone, PartialEq)]
pub struct PyDict<V> {
    entries: Vec<(String, V)>,
    index: HashMap<String, usize>,
}

impl<V> Default for PyDict<V> {
    fn default() -> Self {
        PyDict {
            entries: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<V> PyDict<V> {
    pub fn new() -> Self {
        Self::default()
    }

    /// `d[key] = value`.
    pub fn insert(&mut self, key: String, value: V) {
        match self.index.get(&key) {
            Some(&i) => self.entries[i].1 = value,
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, value));
            }
        }
    }

    /// `d.get(key)`.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.index.get(key).map(|&i| &self.entries[i].1)
    }

    /// `key in d`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `d.items()`, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// `d.values()`, in insertion order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }
}

impl<V> FromIterator<(String, V)> for PyDict<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        let mut d = PyDict::new();
        for (k, v) in iter {
            d.insert(k, v);
        }
        d
    }
}

/// A JSON object, in document order (serde_json's own map would sort the keys).
impl<'de, V: Deserialize<'de>> Deserialize<'de> for PyDict<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DictVisitor<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for DictVisitor<V> {
            type Value = PyDict<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object keyed by question id")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PyDict<V>, A::Error> {
                let mut d = PyDict::new();
                while let Some((k, v)) = map.next_entry::<String, V>()? {
                    d.insert(k, v);
                }
                Ok(d)
            }
        }
        deserializer.deserialize_map(DictVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_keep_their_place_and_take_the_last_value() {
        let d: PyDict<f64> = serde_json::from_str(r#"{"b": 1, "a": 2, "b": 3}"#).unwrap();
        let items: Vec<_> = d.iter().collect();
        assert_eq!(items, [("b", &3.0), ("a", &2.0)]);
    }
}
