//! The persisted form of catalog objects: a version byte, then the object as JSON.
//!
//! JSON keeps entries readable with `ldb` and tolerant of added optional fields; the version
//! byte lets a later Weir migrate entries written by an earlier one instead of misreading them.

use crate::{CatalogError, CatalogObject};

/// The version written by this build. Entries with a higher version are refused.
pub const CODEC_VERSION: u8 = 1;

/// Encodes an object for storage.
pub fn encode_object(object: &CatalogObject) -> Vec<u8> {
    let mut out = vec![CODEC_VERSION];
    serde_json::to_writer(&mut out, object).expect("catalog objects always serialize");
    out
}

/// Decodes an entry written by [`encode_object`] of this or an earlier version.
pub fn decode_object(bytes: &[u8]) -> Result<CatalogObject, CatalogError> {
    match bytes.split_first() {
        Some((&CODEC_VERSION, body)) => {
            serde_json::from_slice(body).map_err(|e| CatalogError::Corrupt(e.to_string()))
        }
        Some((version, _)) => Err(CatalogError::Corrupt(format!(
            "entry has codec version {version}, this build reads up to {CODEC_VERSION}"
        ))),
        None => Err(CatalogError::Corrupt("empty entry".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ColumnDef, ColumnType, ObjectId, TableDef};

    #[test]
    fn round_trip_and_version_check() {
        let table = TableDef::try_new(
            ObjectId(7),
            "users".into(),
            vec![ColumnDef {
                name: "id".into(),
                ty: ColumnType::Int64,
                nullable: true,
                default: None,
            }],
            vec!["id".into()],
            "CREATE TABLE users (id BIGINT PRIMARY KEY)".into(),
        )
        .unwrap();
        let object = CatalogObject::Table(table);
        let bytes = encode_object(&object);
        assert_eq!(decode_object(&bytes).unwrap(), object);

        let mut future = bytes.clone();
        future[0] = CODEC_VERSION + 1;
        assert!(matches!(
            decode_object(&future),
            Err(CatalogError::Corrupt(_))
        ));
        assert!(decode_object(&[]).is_err());
    }
}
