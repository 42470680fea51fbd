//! Values recorded inside events as JSON text rather than positional bincode, so that
//! fields with defaults can be added to them later without making old journals
//! unreadable (the trick the settings use too).

use serde::{de::DeserializeOwned, de::Error, Deserialize, Deserializer, Serialize, Serializer};

/// Serialises `value` as a JSON string.
pub fn serialize<T: Serialize, S: Serializer>(value: &T, ser: S) -> Result<S::Ok, S::Error> {
    let text = serde_json::to_string(value).map_err(serde::ser::Error::custom)?;
    ser.serialize_str(&text)
}

/// Reads a value written by [`serialize`].
pub fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(de: D) -> Result<T, D::Error> {
    let text = String::deserialize(de)?;
    serde_json::from_str(&text).map_err(D::Error::custom)
}
