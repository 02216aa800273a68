//! A map of strings as the spec holds it (`target.labels`, `.annotations`,
//! `.template`): its pairs sorted by key in one allocation of their size.
//! Every SsmParameter stays cached for as long as it exists, and a
//! `BTreeMap` of one entry takes a node of eleven (544 bytes, 640 as the
//! allocator rounds it): 6 MiB for 10,000 objects with one label each.

use std::collections::BTreeMap;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StringMap(Box<[(String, String)]>);

impl StringMap {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        let at = self.0.binary_search_by(|(k, _)| k.as_str().cmp(key)).ok()?;
        Some(self.0[at].1.as_str())
    }

    /// The pairs, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sorted by key; of two pairs with one key, the later wins (as in a map).
    fn of(mut pairs: Vec<(String, String)>) -> Self {
        pairs.reverse();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.dedup_by(|later, earlier| later.0 == earlier.0);
        Self(pairs.into_boxed_slice())
    }
}

impl FromIterator<(String, String)> for StringMap {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        Self::of(pairs.into_iter().collect())
    }
}

impl From<BTreeMap<String, String>> for StringMap {
    fn from(map: BTreeMap<String, String>) -> Self {
        Self(map.into_iter().collect::<Vec<_>>().into_boxed_slice())
    }
}

impl<const N: usize> From<[(&str, &str); N]> for StringMap {
    fn from(pairs: [(&str, &str); N]) -> Self {
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

impl From<StringMap> for BTreeMap<String, String> {
    fn from(map: StringMap) -> Self {
        map.into_iter().collect()
    }
}

impl IntoIterator for StringMap {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_vec().into_iter()
    }
}

impl Serialize for StringMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for StringMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = StringMap;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of strings")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StringMap, A::Error> {
                let mut pairs = Vec::with_capacity(access.size_hint().unwrap_or(0));
                while let Some(pair) = access.next_entry::<String, String>()? {
                    pairs.push(pair);
                }
                Ok(StringMap::of(pairs))
            }
        }
        deserializer.deserialize_map(Pairs)
    }
}

impl schemars::JsonSchema for StringMap {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        <BTreeMap<String, String>>::schema_name()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <BTreeMap<String, String>>::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_reads_and_writes_as_a_map_sorted_by_key() {
        let map: StringMap = serde_json::from_str(r#"{"b": "2", "a": "1", "c": "3"}"#).unwrap();
        assert_eq!(map.get("a"), Some("1"));
        assert_eq!(map.get("c"), Some("3"));
        assert_eq!(map.get("d"), None);
        assert_eq!(map.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(
            serde_json::to_string(&map).unwrap(),
            r#"{"a":"1","b":"2","c":"3"}"#
        );
    }

    #[test]
    fn of_two_pairs_with_one_key_the_later_wins_as_in_a_map() {
        let map: StringMap = [("k", "first"), ("j", "x"), ("k", "second")].into();
        assert_eq!(map.len(), 2);
        assert_eq!(map.get("k"), Some("second"));
    }

    #[test]
    fn its_schema_is_a_maps() {
        let mut generator = schemars::SchemaGenerator::default();
        assert_eq!(
            <StringMap as schemars::JsonSchema>::json_schema(&mut generator),
            <BTreeMap<String, String> as schemars::JsonSchema>::json_schema(&mut generator)
        );
    }
}
