//! The embedded default end to end: a generated master KEK, a SQLite
//! catalog, no server. Stores and reads secrets, runs a key order and an
//! asymmetric order, shows the policy at work, and cleans up after itself.

use keywarden::config::Config;
use keywarden::context::Context;
use keywarden::model::{Consumer, ProjectId, UserId};
use keywarden::secret::SecretBytes;
use keywarden::store::{KeyOrder, KeyPairOrder, ListQuery, NewSecret, SecretStore};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile_dir()?;
    let config = Config::generate(dir.join("keywarden.db"))?;
    let store = SecretStore::open(&config)?;
    println!("store opened: catalog {}", config.catalog);

    let alice = Context::new(UserId::new("alice")?, ProjectId::new("demo")?, ["creator"]);
    let id = store.store_secret(
        &alice,
        NewSecret::new().name("testSecret").payload_text(
            "my-secret-payload",
            Some("text/plain"),
            None,
        ),
    )?;
    println!("stored   {}", store.secret_href(&id));
    let payload = store.payload(&alice, &id)?;
    println!(
        "payload  {} ({} bytes, {})",
        String::from_utf8_lossy(payload.bytes.expose_secret()),
        payload.bytes.len(),
        payload.content_type
    );

    let later = store.store_secret(&alice, NewSecret::new().name("filled-later"))?;
    store.put_payload(
        &alice,
        &later,
        SecretBytes::copy_from(b"second step"),
        "text/plain",
        None,
    )?;
    let again = store.put_payload(
        &alice,
        &later,
        SecretBytes::copy_from(b"x"),
        "text/plain",
        None,
    );
    println!("second payload update refused: {}", again.unwrap_err());

    let order = store.create_key(
        &alice,
        &KeyOrder {
            mode: Some("ctr".into()),
            ..KeyOrder::aes(256)
        },
    )?;
    println!(
        "order    {} {} -> secret {:?}",
        order.id,
        order.status,
        order.secret_id.map(|s| s.to_string())
    );
    let pair = store.create_key_pair(
        &alice,
        &KeyPairOrder {
            name: Some("signing".into()),
            algorithm: "rsa".into(),
            bit_length: 2048,
            expiration: None,
            passphrase: None,
        },
    )?;
    let container = store.container(&alice, &pair.container_id.ok_or("no container")?)?;
    println!(
        "asymmetric order {} -> container with {:?}",
        pair.status,
        container
            .secret_refs
            .iter()
            .map(|(n, _)| n)
            .collect::<Vec<_>>()
    );

    store.add_consumer(
        &alice,
        &id,
        Consumer {
            service: "cinder".into(),
            resource_type: "volume".into(),
            resource_id: "vol-1".into(),
        },
    )?;
    println!(
        "delete with a consumer refused: {}",
        store.delete_secret(&alice, &id, false).unwrap_err()
    );

    let observer = Context::new(UserId::new("olga")?, ProjectId::new("demo")?, ["observer"]);
    let denied = store
        .store_secret(&observer, NewSecret::new().name("nope"))
        .unwrap_err();
    println!("observer storing: {denied}");
    let outsider = Context::new(UserId::new("eve")?, ProjectId::new("elsewhere")?, ["admin"]);
    let hidden = store.payload(&outsider, &id).unwrap_err();
    println!("other project reading: {hidden}");

    let page = store.list_secrets(&alice, &ListQuery::default())?;
    println!("list: {} of {} secrets", page.items.len(), page.total);
    for m in &page.items {
        println!(
            "  {}  {:<14} {:<10} {}",
            m.id,
            m.name.as_deref().unwrap_or("None"),
            m.secret_type,
            m.created
        );
    }
    store.delete_secret(&alice, &id, true)?;
    let report = store.operator().check()?;
    println!(
        "check: {} secrets, {} orders, {} containers; KEKs open",
        report.counts.secrets, report.counts.orders, report.counts.containers
    );

    drop(store);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("keywarden-quickstart-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
