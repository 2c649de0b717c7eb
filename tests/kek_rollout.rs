//! Master-KEK rotation with several instances on one catalog (issue 19,
//! defect 6): the new key is staged on every instance first, the rotation
//! waits for every running instance to hold it, an instance still on its
//! old `master_kek` keeps working after the rotation, and the prune waits
//! for every instance to make the new key its `master_kek`.

mod common;

use std::sync::Arc;

use common::{Fixture, Kind, admin};
use keywarden::ErrorKind;
use keywarden::backend::MasterKek;
use keywarden::config::{BackendConfig, Config};
use keywarden::store::{NewSecret, SecretStore};

catalog_tests!(
    an_old_config_instance_never_fails_after_another_rotates,
    an_instance_on_the_old_config_keeps_working_after_another_rotates,
    rotation_waits_for_every_running_instance_to_hold_the_new_key,
    prune_waits_for_instances_still_on_the_old_master_kek,
    project_keks_made_during_a_rotation_end_under_the_new_key,
    an_instance_lacking_the_active_key_is_told_what_to_do,
    status_lists_running_instances_and_forgets_closed_ones,
);

fn secret(payload: &str) -> NewSecret {
    NewSecret::new().payload_text(payload, Some("text/plain"), None)
}

/// `config` with its default backend's keys replaced.
fn with_keys(
    config: &Config,
    active: &MasterKek,
    staged: &[&MasterKek],
    retired: &[&MasterKek],
) -> Config {
    let mut c = config.clone();
    c.backends.insert(
        c.default_backend.clone(),
        BackendConfig::SimpleCrypto {
            master_kek: active.clone(),
            staged_master_keks: staged.iter().map(|k| (*k).clone()).collect(),
            retired_master_keks: retired.iter().map(|k| (*k).clone()).collect(),
        },
    );
    c
}

fn old_key(f: &Fixture) -> MasterKek {
    f.config
        .master_kek(&f.config.default_backend)
        .unwrap()
        .clone()
}

fn rotate(store: &SecretStore, config: &Config) -> keywarden::Result<usize> {
    store
        .operator()
        .rewrap_project_keks(&config.default_backend)
}

/// The defect as it was: A on config {K1}, B on {K2, retired K1} runs the
/// rotation. On main before the fix the rotation ran and A's next store
/// failed with `Integrity` ("wrapped by master KEK …, which is not
/// configured"); now the rotation is refused while A lacks K2, and A goes
/// on storing.
fn an_old_config_instance_never_fails_after_another_rotates(kind: &Kind) {
    let a = Fixture::with(kind);
    let k1 = old_key(&a);
    a.store.store_secret(&admin("p1"), secret("x")).unwrap();
    let b_config = with_keys(&a.config, &MasterKek::generate().unwrap(), &[], &[&k1]);
    let b = SecretStore::open(&b_config).unwrap();
    let rotated = rotate(&b, &b_config);
    a.store
        .store_secret(&admin("p1"), secret("y"))
        .unwrap_or_else(|e| panic!("the old-config instance after a rotation ({rotated:?}): {e}"));
    assert_eq!(rotated.unwrap_err().kind(), ErrorKind::Conflict);
}

/// The defect: instance A runs on config {K1}; B rotates to K2. Before,
/// every store of A then failed with `Integrity` (its project KEKs were
/// wrapped under a key it lacked). Now A holds K2 as staged before the
/// rotation may run, and goes on storing and reading after it, without a
/// restart, while its config still names K1 as master_kek.
fn an_instance_on_the_old_config_keeps_working_after_another_rotates(kind: &Kind) {
    let a = Fixture::with(kind);
    let k1 = old_key(&a);
    let k2 = MasterKek::generate().unwrap();
    let before = a
        .store
        .store_secret(&admin("p1"), secret("before"))
        .unwrap();
    a.store
        .reload_master_keys(&with_keys(&a.config, &k1, &[&k2], &[]))
        .unwrap();

    let b_config = with_keys(&a.config, &k2, &[], &[&k1]);
    let b = SecretStore::open(&b_config).unwrap();
    assert_eq!(rotate(&b, &b_config).unwrap(), 1);

    for project in ["p1", "p2"] {
        let id = a
            .store
            .store_secret(&admin(project), secret(project))
            .unwrap_or_else(|e| panic!("the old-config instance stores in {project}: {e}"));
        assert_eq!(
            b.payload(&admin(project), &id)
                .unwrap()
                .bytes
                .expose_secret(),
            project.as_bytes()
        );
    }
    assert_eq!(
        a.store
            .payload(&admin("p1"), &before)
            .unwrap()
            .bytes
            .expose_secret(),
        b"before"
    );
    // Everything is under K2 now; K1 alone opens nothing.
    assert_eq!(
        a.raw().count(&format!(
            "project_keks WHERE master_fingerprint <> '{}'",
            k2.fingerprint()
        )),
        0
    );
    let e = SecretStore::open(&with_keys(&a.config, &k1, &[], &[])).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
}

/// A rotation while a running instance lacks the new key is refused, names
/// that instance, and changes nothing; that instance keeps working.
fn rotation_waits_for_every_running_instance_to_hold_the_new_key(kind: &Kind) {
    let a = Fixture::with(kind);
    let k1 = old_key(&a);
    let k2 = MasterKek::generate().unwrap();
    a.store.store_secret(&admin("p1"), secret("x")).unwrap();
    let b_config = with_keys(&a.config, &k2, &[], &[&k1]);
    let b = SecretStore::open(&b_config).unwrap();
    let e = rotate(&b, &b_config).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    let text = e.to_string();
    assert!(
        text.contains(&format!("(pid {})", std::process::id())),
        "names the instance: {text}"
    );
    assert!(
        text.contains("staged_master_keks"),
        "says what to do: {text}"
    );
    assert!(
        !text.contains(k2.to_base64().as_str()),
        "never the key: {text}"
    );
    assert_eq!(
        a.raw().count(&format!(
            "project_keks WHERE master_fingerprint = '{}'",
            k1.fingerprint()
        )),
        1,
        "nothing rewrapped"
    );
    a.store.store_secret(&admin("p1"), secret("y")).unwrap();
    a.store.store_secret(&admin("p3"), secret("z")).unwrap();
    // Closed, the instance no longer holds the rotation back.
    let Fixture { store, .. } = a;
    drop(store);
    assert_eq!(rotate(&b, &b_config).unwrap(), 2);
}

/// After the rotation, the retired key may leave a config only once no
/// running instance still has it as its master_kek.
fn prune_waits_for_instances_still_on_the_old_master_kek(kind: &Kind) {
    let a = Fixture::with(kind);
    let k1 = old_key(&a);
    let k2 = MasterKek::generate().unwrap();
    a.store.store_secret(&admin("p1"), secret("x")).unwrap();
    a.store
        .reload_master_keys(&with_keys(&a.config, &k1, &[&k2], &[]))
        .unwrap();
    let b_config = with_keys(&a.config, &k2, &[], &[&k1]);
    let b = SecretStore::open(&b_config).unwrap();
    let backend = &b_config.default_backend;

    // Before the rotation: project KEKs are still under K1.
    let e = b.operator().check_prune(backend).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(e.to_string().contains("kek rotate"), "{e}");

    rotate(&b, &b_config).unwrap();
    let e = b.operator().check_prune(backend).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(
        e.to_string()
            .contains(&format!("(pid {})", std::process::id())),
        "{e}"
    );
    // A takes the rotated config: K2 its master_kek, K1 retired.
    a.store.reload_master_keys(&b_config).unwrap();
    b.operator().check_prune(backend).unwrap();
    a.store.store_secret(&admin("p2"), secret("after")).unwrap();
}

/// Threads making first KEKs of new projects on instance A while B rotates:
/// no store fails, and every project KEK ends under the new key (none
/// slips in under the old one after the rewrap read the table).
fn project_keks_made_during_a_rotation_end_under_the_new_key(kind: &Kind) {
    let a = Fixture::with(kind);
    let k1 = old_key(&a);
    let k2 = MasterKek::generate().unwrap();
    a.store
        .reload_master_keys(&with_keys(&a.config, &k1, &[&k2], &[]))
        .unwrap();
    let b_config = with_keys(&a.config, &k2, &[], &[&k1]);
    let b = SecretStore::open(&b_config).unwrap();
    let a_store = Arc::new(a.store);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let (store, stop) = (a_store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut made = Vec::new();
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) || i < 5 {
                    let project = format!("new-{t}-{i}");
                    let id = store
                        .store_secret(&admin(&project), secret(&project))
                        .unwrap_or_else(|e| panic!("store in {project}: {e}"));
                    made.push((project, id));
                    i += 1;
                }
                made
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(200));
    rotate(&b, &b_config).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut n = 0;
    for w in workers {
        for (project, id) in w.join().unwrap() {
            assert_eq!(
                b.payload(&admin(&project), &id)
                    .unwrap()
                    .bytes
                    .expose_secret(),
                project.as_bytes()
            );
            n += 1;
        }
    }
    assert!(n >= 20, "{n} stores");
    let mut raw = common::Raw::open(&a.config.catalog);
    assert_eq!(
        raw.count(&format!(
            "project_keks WHERE master_fingerprint <> '{}'",
            k2.fingerprint()
        )),
        0,
        "a project KEK under the old key after the rotation"
    );
}

/// An instance whose config lacks the key new project KEKs are wrapped
/// under is refused at open with a Config error naming that key's
/// fingerprint and what to do, never the key.
fn an_instance_lacking_the_active_key_is_told_what_to_do(kind: &Kind) {
    let a = Fixture::with(kind);
    let k1 = old_key(&a);
    let other = MasterKek::generate().unwrap();
    let e = SecretStore::open(&with_keys(&a.config, &other, &[], &[])).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    let text = e.to_string();
    assert!(text.contains(&k1.fingerprint()), "{text}");
    assert!(text.contains("staged_master_keks"), "{text}");
    assert!(!text.contains(k1.to_base64().as_str()), "{text}");
    // Reloading into a key ring that lacks it is refused the same way, and
    // the running instance keeps its keys.
    let e = a
        .store
        .reload_master_keys(&with_keys(&a.config, &other, &[], &[]))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    a.store.store_secret(&admin("p1"), secret("x")).unwrap();
}

/// `master_kek_status` lists each running instance with the keys it holds;
/// a closed store removes itself.
fn status_lists_running_instances_and_forgets_closed_ones(kind: &Kind) {
    let a = Fixture::with(kind);
    let k1 = old_key(&a);
    let k2 = MasterKek::generate().unwrap();
    let b = SecretStore::open(&with_keys(&a.config, &k1, &[&k2], &[])).unwrap();
    let status = a.store.operator().master_kek_status().unwrap();
    assert_eq!(status.len(), 1);
    let s = &status[0];
    assert_eq!(s.catalog_active.as_deref(), Some(k1.fingerprint().as_str()));
    assert_eq!(s.instances.len(), 2, "{s:?}");
    assert!(s.instances.iter().all(|i| i.pid == std::process::id()));
    assert!(
        s.instances
            .iter()
            .any(|i| i.known.contains(&k2.fingerprint()))
    );
    drop(b);
    let s = a.store.operator().master_kek_status().unwrap().remove(0);
    assert_eq!(s.instances.len(), 1, "{s:?}");
    assert_eq!(s.instances[0].instance_id, s.this_instance);
}
