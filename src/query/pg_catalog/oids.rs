//! Object identifiers. Postgres clients join catalog tables on OIDs and keep them between
//! queries (pgjdbc caches type and relation OIDs per connection), so every OID here is derived
//! from something stable: a Weir object's id, or a system relation's well-known number.

use weir_catalog::ObjectId;

/// The bootstrap superuser, owner of everything until Weir has roles.
pub const OWNER: i32 = 10;

/// Namespaces Postgres itself numbers so.
pub const PG_CATALOG_NAMESPACE: i32 = 11;
pub const PUBLIC_NAMESPACE: i32 = 2200;
/// Numbered below `FIRST_USER_OID`, as Postgres numbers the schemas it creates.
pub const INFORMATION_SCHEMA_NAMESPACE: i32 = 13000;
pub const WEIR_NAMESPACE: i32 = 13001;

/// The btree access method: what every primary key index reports.
pub const BTREE: i32 = 403;

/// Where Postgres starts numbering user objects.
const FIRST_USER_OID: i32 = 16385;
/// OIDs each Weir object owns: its relation, its primary key index and constraint, and one
/// per column default.
const OIDS_PER_OBJECT: i32 = 2048;
const RELATION_SLOT: i32 = 0;
const PRIMARY_KEY_INDEX_SLOT: i32 = 1;
const PRIMARY_KEY_SLOT: i32 = 2;
const FIRST_DEFAULT_SLOT: i32 = 3;
/// Columns past this many have no OID for a default (Postgres allows 1,600 columns).
pub const MAX_DEFAULT_COLUMNS: usize = (OIDS_PER_OBJECT - FIRST_DEFAULT_SLOT) as usize;

/// Where each system schema's relations without a well-known OID are numbered from, in name
/// order: apart, so an OID tells its schema.
pub const FIRST_PG_CATALOG_RELATION: i32 = 10000;
pub const FIRST_INFORMATION_SCHEMA_RELATION: i32 = 12000;
pub const FIRST_WEIR_RELATION: i32 = 14000;

/// `pg_table_is_visible`: whether a relation's schema is on the search path (`pg_catalog`,
/// `public`), so that its bare name finds it.
pub fn on_search_path(relation: i32) -> bool {
    !(FIRST_INFORMATION_SCHEMA_RELATION..FIRST_USER_OID).contains(&relation)
}

/// A user's role OID, from its name (roles have no id): FNV-1a, in a range of its own above
/// every relation's.
pub fn role(name: &str) -> i32 {
    let hash = name.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    FIRST_ROLE + (hash % (i32::MAX - FIRST_ROLE) as u32) as i32
}

/// Where role OIDs start.
const FIRST_ROLE: i32 = 1 << 30;

/// What an OID in the user range stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserOid {
    Relation(ObjectId),
    PrimaryKeyIndex(ObjectId),
    PrimaryKey(ObjectId),
    Default(ObjectId, usize),
}

impl UserOid {
    pub fn oid(self) -> i32 {
        let (id, slot) = match self {
            Self::Relation(id) => (id, RELATION_SLOT),
            Self::PrimaryKeyIndex(id) => (id, PRIMARY_KEY_INDEX_SLOT),
            Self::PrimaryKey(id) => (id, PRIMARY_KEY_SLOT),
            Self::Default(id, column) => (id, FIRST_DEFAULT_SLOT + column as i32),
        };
        FIRST_USER_OID + id.0 as i32 * OIDS_PER_OBJECT + slot
    }

    pub fn decode(oid: i32) -> Option<Self> {
        let offset = oid.checked_sub(FIRST_USER_OID).filter(|o| *o >= 0)?;
        let id = ObjectId((offset / OIDS_PER_OBJECT) as u64);
        Some(match offset % OIDS_PER_OBJECT {
            RELATION_SLOT => Self::Relation(id),
            PRIMARY_KEY_INDEX_SLOT => Self::PrimaryKeyIndex(id),
            PRIMARY_KEY_SLOT => Self::PrimaryKey(id),
            slot => Self::Default(id, (slot - FIRST_DEFAULT_SLOT) as usize),
        })
    }
}

/// The OIDs Postgres gives its own catalog tables. Clients write some of them as numbers
/// (`classoid = 1259`) rather than `'pg_class'::regclass`.
pub fn well_known_relation(name: &str) -> Option<i32> {
    Some(match name {
        "pg_type" => 1247,
        "pg_attribute" => 1249,
        "pg_proc" => 1255,
        "pg_class" => 1259,
        "pg_authid" => 1260,
        "pg_database" => 1262,
        "pg_attrdef" => 2604,
        "pg_constraint" => 2606,
        "pg_description" => 2609,
        "pg_index" => 2610,
        "pg_namespace" => 2615,
        "pg_am" => 2601,
        "pg_trigger" => 2620,
        "pg_extension" => 3079,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_oids_round_trip_and_stay_apart() {
        for id in [0, 1, 7, 100_000] {
            let id = ObjectId(id);
            let oids = [
                UserOid::Relation(id),
                UserOid::PrimaryKeyIndex(id),
                UserOid::PrimaryKey(id),
                UserOid::Default(id, 0),
                UserOid::Default(id, MAX_DEFAULT_COLUMNS - 1),
            ];
            for oid in oids {
                assert!(oid.oid() >= FIRST_USER_OID);
                assert_eq!(UserOid::decode(oid.oid()), Some(oid));
            }
        }
        // The last OID one object owns is just below the next object's first.
        assert_eq!(
            UserOid::Default(ObjectId(1), MAX_DEFAULT_COLUMNS - 1).oid() + 1,
            UserOid::Relation(ObjectId(2)).oid()
        );
        assert_eq!(UserOid::decode(PUBLIC_NAMESPACE), None);
    }
}
