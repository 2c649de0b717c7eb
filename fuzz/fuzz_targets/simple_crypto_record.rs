//! What SimpleCrypto keeps in the catalog is read back from the database:
//! untrusted. A secret's row is an envelope (version, nonce, ciphertext,
//! tag) naming a project KEK; the KEK's row is the KEK sealed by the master
//! KEK, with the master KEK's fingerprint. Properties: unchanged rows give
//! the material back; a row changed in any way (bytes flipped, cut short,
//! grown, replaced outright, another KEK id or fingerprint) gives
//! `Integrity`, never a panic and never other material.
//!
//! The first byte picks what changes and how; the rest is the change.
#![no_main]

use std::sync::{Arc, Mutex};

use keywarden::ErrorKind;
use keywarden::backend::{KekStore, KeyManager, MasterKek, Scope, SimpleCrypto, WrappedKek};
use keywarden::model::{BackendId, ProjectId, SecretId};
use keywarden::secret::SecretBytes;
use libfuzzer_sys::fuzz_target;

const MASTER_KEK: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
const MATERIAL: &[u8] = b"the material under test";

/// The one project KEK row of the one project, in memory.
#[derive(Debug)]
struct Keks {
    project: ProjectId,
    row: Mutex<Option<WrappedKek>>,
}

impl Keks {
    fn row(&self) -> Option<WrappedKek> {
        self.row.lock().expect("not poisoned").clone()
    }
}

impl KekStore for Keks {
    fn project_kek(&self, _: &BackendId, _: &ProjectId) -> keywarden::Result<Option<WrappedKek>> {
        Ok(self.row())
    }

    fn insert_project_kek(
        &self,
        _: &BackendId,
        _: &ProjectId,
        kek: WrappedKek,
    ) -> keywarden::Result<WrappedKek> {
        Ok(self
            .row
            .lock()
            .expect("not poisoned")
            .get_or_insert(kek)
            .clone())
    }

    fn project_keks(&self, _: &BackendId) -> keywarden::Result<Vec<(ProjectId, WrappedKek)>> {
        Ok(self
            .row()
            .map(|k| (self.project.clone(), k))
            .into_iter()
            .collect())
    }

    fn replace_project_keks(
        &self,
        _: &BackendId,
        keks: Vec<(ProjectId, WrappedKek)>,
    ) -> keywarden::Result<()> {
        *self.row.lock().expect("not poisoned") = keks.into_iter().next().map(|(_, k)| k);
        Ok(())
    }
}

/// Flips bytes by `change`, then (by `how`) cuts the row to its length,
/// grows the row by what is left of it, or makes the row `change` itself.
fn apply(row: &mut Vec<u8>, change: &[u8], how: u8) {
    match how % 4 {
        0 => row.iter_mut().zip(change).for_each(|(b, c)| *b ^= c),
        1 => {
            row.iter_mut().zip(change).for_each(|(b, c)| *b ^= c);
            row.truncate(change.len());
        }
        2 => {
            let extra = change.get(row.len()..).unwrap_or_default().to_vec();
            row.iter_mut().zip(change).for_each(|(b, c)| *b ^= c);
            row.extend_from_slice(&extra);
        }
        _ => *row = change.to_vec(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, change)) = data.split_first() else {
        return;
    };
    let id = BackendId::new("software").expect("a valid id");
    let project = ProjectId::new("p").expect("a valid id");
    let secret: SecretId = "6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
        .parse()
        .expect("a valid id");
    let scope = Scope::new(&project, &secret);
    let master = MasterKek::from_base64(MASTER_KEK).expect("a valid master KEK");
    let keks = Arc::new(Keks {
        project: project.clone(),
        row: Mutex::new(None),
    });
    let stored = SimpleCrypto::new(id.clone(), &master, &[], keks.clone())
        .store(scope, &SecretBytes::copy_from(MATERIAL))
        .expect("stores");
    let kek = keks.row().expect("the project KEK was made");

    let (mut stored_after, mut kek_after) = (stored.clone(), kek.clone());
    let text = String::from_utf8_lossy(change).into_owned();
    match (selector >> 2) % 5 {
        0 => apply(&mut stored_after.bytes, change, selector),
        1 => apply(&mut kek_after.wrapped, change, selector),
        // Both rows name the new KEK id: the KEK's seal binds its id.
        2 => {
            stored_after.kek_id = Some(text.clone());
            kek_after.kek_id = text;
        }
        3 => stored_after.kek_id = Some(text),
        _ => kek_after.master_fingerprint = text,
    }
    let unchanged = stored_after == stored && kek_after == kek;
    *keks.row.lock().expect("not poisoned") = Some(kek_after);

    // A fresh backend: nothing cached from the store above.
    let backend = SimpleCrypto::new(id, &master, &[], keks);
    match backend.retrieve(scope, &stored_after) {
        Ok(material) => {
            assert!(unchanged, "a changed row opened");
            assert_eq!(material.expose_secret(), MATERIAL);
        }
        Err(e) => {
            assert!(!unchanged, "an unchanged row failed: {e}");
            assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
        }
    }
});
