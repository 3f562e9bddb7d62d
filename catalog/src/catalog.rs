//! The in-memory catalog: every object by name, and the id counter.
//!
//! Callers change it only after the matching storage write committed, so it always mirrors
//! what a restart would load.

use std::collections::BTreeMap;

use crate::{CatalogError, CatalogObject, ObjectId, ObjectKind, SourceDef, TableDef, ViewDef};

/// All objects, by name. Relations (tables, later sources and views) share one namespace, as
/// in Postgres.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    objects: BTreeMap<String, CatalogObject>,
    next_id: u64,
}

impl Catalog {
    /// The catalog holding `objects`, allocating ids from `next_id` on.
    pub fn new(objects: impl IntoIterator<Item = CatalogObject>, next_id: u64) -> Self {
        let objects: BTreeMap<_, _> = objects
            .into_iter()
            .map(|o| (o.name().to_string(), o))
            .collect();
        // A counter behind the largest id would hand out a used id: never trust it blindly.
        let floor = objects.values().map(|o| o.id().0 + 1).max().unwrap_or(1);
        Self {
            objects,
            next_id: next_id.max(floor),
        }
    }

    /// The id the next created object gets. Persist `next_id()` with the object that uses it.
    pub fn peek_id(&self) -> ObjectId {
        ObjectId(self.next_id)
    }

    /// The counter value to persist once [`Self::peek_id`] is used.
    pub fn next_id(&self) -> u64 {
        self.next_id + 1
    }

    /// Fails if `name` is taken by any object.
    pub fn check_free(&self, name: &str) -> Result<(), CatalogError> {
        match self.objects.get(name) {
            Some(existing) => Err(CatalogError::AlreadyExists {
                kind: existing.kind().as_str(),
                name: name.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// Records a created object (after its storage write committed).
    pub fn insert(&mut self, object: CatalogObject) {
        self.next_id = self.next_id.max(object.id().0 + 1);
        self.objects.insert(object.name().to_string(), object);
    }

    /// Forgets a dropped object (after its storage write committed).
    pub fn remove(&mut self, name: &str) -> Option<CatalogObject> {
        self.objects.remove(name)
    }

    /// Any object by name.
    pub fn get(&self, name: &str) -> Option<&CatalogObject> {
        self.objects.get(name)
    }

    /// The table called `name`, or an error saying it does not exist.
    pub fn table(&self, name: &str) -> Result<&TableDef, CatalogError> {
        match self.objects.get(name) {
            Some(CatalogObject::Table(t)) => Ok(t),
            _ => Err(CatalogError::NotFound {
                kind: ObjectKind::Table.as_str(),
                name: name.into(),
            }),
        }
    }

    /// The object of `kind` called `name`: `None` if the name is free, an error if another
    /// kind of object holds it.
    pub fn get_kind(
        &self,
        kind: ObjectKind,
        name: &str,
    ) -> Result<Option<&CatalogObject>, CatalogError> {
        match self.objects.get(name) {
            Some(object) if object.kind() == kind => Ok(Some(object)),
            Some(_) => Err(CatalogError::WrongKind {
                name: name.into(),
                expected: kind.as_str(),
            }),
            None => Ok(None),
        }
    }

    /// Every object, ordered by name.
    pub fn objects(&self) -> impl Iterator<Item = &CatalogObject> {
        self.objects.values()
    }

    /// Every source, ordered by name.
    pub fn sources(&self) -> impl Iterator<Item = &SourceDef> {
        self.objects().filter_map(|o| match o {
            CatalogObject::Source(s) => Some(s),
            _ => None,
        })
    }

    /// Every materialized view, ordered by name.
    pub fn views(&self) -> impl Iterator<Item = &ViewDef> {
        self.objects().filter_map(|o| match o {
            CatalogObject::View(v) => Some(v),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ColumnDef, ColumnType};

    fn table(id: u64, name: &str) -> CatalogObject {
        CatalogObject::Table(
            TableDef::try_new(
                ObjectId(id),
                name.into(),
                vec![ColumnDef {
                    name: "a".into(),
                    ty: ColumnType::Int32,
                    nullable: true,
                    default: None,
                }],
                vec![],
                String::new(),
            )
            .unwrap(),
        )
    }

    #[test]
    fn ids_never_go_back() {
        let catalog = Catalog::new([table(41, "t")], 3);
        assert_eq!(catalog.peek_id(), ObjectId(42));
        assert!(matches!(
            catalog.check_free("t"),
            Err(CatalogError::AlreadyExists { .. })
        ));
        assert!(catalog.check_free("u").is_ok());
        assert!(matches!(
            catalog.table("u"),
            Err(CatalogError::NotFound { .. })
        ));
    }
}
