//! Reading a manifest field by field, so that nothing is dropped unseen:
//! each field the conversion understands is taken, and whatever is left
//! over is reported as having no equivalent.

use serde_json::{Map, Value};

/// The fields of one JSON object at `path` (`spec.target`), and the problems
/// found in them.
pub struct Fields {
    path: String,
    fields: Map<String, Value>,
}

impl Fields {
    /// The object `value` at `path`; anything else is a problem.
    pub fn of(path: &str, value: Value, problems: &mut Problems) -> Self {
        let fields = match value {
            Value::Object(fields) => fields,
            Value::Null => Map::new(),
            _ => {
                problems.push(format!("{path}: not an object"));
                Map::new()
            }
        };
        Self {
            path: path.to_owned(),
            fields,
        }
    }

    /// Where this object is.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path of field `name` of this object.
    pub fn at(&self, name: &str) -> String {
        match self.path.is_empty() {
            true => name.to_owned(),
            false => format!("{}.{name}", self.path),
        }
    }

    /// Field `name`, taken (null counts as absent).
    pub fn take(&mut self, name: &str) -> Option<Value> {
        self.fields.remove(name).filter(|v| !v.is_null())
    }

    /// Field `name` as a string.
    pub fn string(&mut self, name: &str, problems: &mut Problems) -> Option<String> {
        match self.take(name)? {
            Value::String(text) => Some(text),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => {
                problems.push(format!("{}: not a string", self.at(name)));
                None
            }
        }
    }

    /// Field `name` as a boolean.
    pub fn boolean(&mut self, name: &str, problems: &mut Problems) -> Option<bool> {
        match self.take(name)? {
            Value::Bool(b) => Some(b),
            _ => {
                problems.push(format!("{}: not a boolean", self.at(name)));
                None
            }
        }
    }

    /// Field `name` as an object of its own.
    pub fn object(&mut self, name: &str, problems: &mut Problems) -> Option<Fields> {
        let path = self.at(name);
        self.take(name).map(|v| Fields::of(&path, v, problems))
    }

    /// Field `name` as a list of objects.
    pub fn list(&mut self, name: &str, problems: &mut Problems) -> Vec<Fields> {
        let path = self.at(name);
        match self.take(name) {
            None => Vec::new(),
            Some(Value::Array(items)) => (items.into_iter().enumerate())
                .map(|(i, item)| Fields::of(&format!("{path}[{i}]"), item, problems))
                .collect(),
            Some(_) => {
                problems.push(format!("{path}: not a list"));
                Vec::new()
            }
        }
    }

    /// Field `name` as a map of strings.
    pub fn strings(
        &mut self,
        name: &str,
        problems: &mut Problems,
    ) -> Option<std::collections::BTreeMap<String, String>> {
        let path = self.at(name);
        let Value::Object(map) = self.take(name)? else {
            problems.push(format!("{path}: not a map of strings"));
            return None;
        };
        let mut strings = std::collections::BTreeMap::new();
        for (key, value) in map {
            match value {
                Value::String(text) => {
                    strings.insert(key, text);
                }
                _ => problems.push(format!("{path}.{key}: not a string")),
            }
        }
        Some(strings)
    }

    /// Every field not taken is a problem: it has no equivalent here.
    pub fn done(self, problems: &mut Problems) {
        for (name, value) in &self.fields {
            if !value.is_null() {
                problems.push(format!("{}: has no equivalent", self.at(name)));
            }
        }
    }
}

/// What stops one object's conversion, each naming the field at fault.
pub type Problems = Vec<String>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_field_not_taken_is_reported_by_its_path() {
        let mut problems = Problems::new();
        let mut spec = Fields::of(
            "spec",
            json!({"a": "x", "b": {"c": 1}, "d": null}),
            &mut problems,
        );
        assert_eq!(spec.string("a", &mut problems).as_deref(), Some("x"));
        let b = spec.object("b", &mut problems).unwrap();
        b.done(&mut problems);
        spec.done(&mut problems);
        assert_eq!(problems, ["spec.b.c: has no equivalent"]);
    }

    #[test]
    fn a_field_of_the_wrong_shape_is_reported() {
        let mut problems = Problems::new();
        let mut spec = Fields::of("spec", json!({"l": "x", "m": [1]}), &mut problems);
        assert!(spec.list("l", &mut problems).is_empty());
        let items = spec.list("m", &mut problems);
        assert_eq!(items.len(), 1);
        assert_eq!(problems, ["spec.l: not a list", "spec.m[0]: not an object"]);
    }
}
