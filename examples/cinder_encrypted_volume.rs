//! The seed guide's chapter 5 flow, in one process: an admin defines the
//! LUKS volume type, a user with the `creator` role creates an encrypted
//! volume (cinder makes its key), the key shows in the secret list with the
//! volume's creation time, nova attaches the volume (fetches the key,
//! derives the passphrase, registers the libvirt secret, formats the fresh
//! volume) and data goes through LUKS. Then snapshot, clone and delete, as
//! cinder handles their keys. Cleans up after itself.

use keywarden::config::Config;
use keywarden::context::Context;
use keywarden::model::{ProjectId, Timestamp, UserId};
use keywarden::store::{ListQuery, SecretStore};
use keywarden::volume::luks::Pbkdf2Cost;
use keywarden::volume::{AttachOptions, EncryptionSpec, VolumeKeys, attach};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("keywarden-cinder-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run(&dir);
    std::fs::remove_dir_all(&dir)?;
    result
}

fn run(dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::generate(dir.join("keywarden.db"))?;
    let store = SecretStore::open(&config)?;

    // openstack volume type create --encryption-provider luks
    //   --encryption-cipher aes-xts-plain64 --encryption-key-size 256
    //   --encryption-control-location front-end LUKS
    let luks = EncryptionSpec::parse("luks", "front-end", Some("aes-xts-plain64"), Some("256"))?;
    let req = luks.key_request()?;
    println!(
        "volume type LUKS: provider {}, cipher aes-xts-plain64, key {} {} bits, {}",
        luks.provider, req.algorithm, req.bit_length, luks.control_location
    );

    // Without the creator role the key order is refused, so the volume is.
    let keys = VolumeKeys::new(&store);
    let observer = Context::new(UserId::new("olga")?, ProjectId::new("demo")?, ["observer"]);
    let refused = keys.create_volume(&observer, &luks).unwrap_err();
    println!("create as observer: {refused}");

    // openstack volume create --size 1 --type LUKS encrypted_volume
    let user = Context::new(UserId::new("demo")?, ProjectId::new("demo")?, ["creator"]);
    let created_at = Timestamp::now();
    let volume = keys.create_volume(&user, &luks)?;
    println!(
        "volume {} created, encryption_key_id {}",
        volume.id, volume.key_id
    );

    // openstack secret list: the key is there, created when the volume was.
    let page = store.list_secrets(&user, &ListQuery::default())?;
    let key = page
        .items
        .iter()
        .find(|m| m.id == volume.key_id)
        .ok_or("the volume's key is not in the secret list")?;
    println!(
        "secret list: {}  {} {} {} created {}",
        store.secret_href(&key.id),
        key.secret_type,
        key.algorithm.as_deref().unwrap_or("None"),
        key.bit_length.unwrap_or(0),
        key.created
    );
    if (key.created.unix() - created_at.unix()).abs() > 5 {
        return Err("the key's timestamp does not match the volume's".into());
    }

    // nova attaches: the volume is a fresh file here, so the first attach
    // formats it (os-brick's lazy format), with the volume type's cipher.
    let file = dir.join(format!("volume-{}", volume.id));
    std::fs::File::create(&file)?.set_len(8 << 20)?;
    // Tiny PBKDF2 cost so the example runs fast; real volumes take the 2 s default.
    let opts = AttachOptions {
        format_cost: Pbkdf2Cost::Iterations(1000),
        ..AttachOptions::default()
    };
    let mut attached = attach(
        &store,
        &user,
        volume.id,
        &volume.encryption_metadata(),
        &file,
        &opts,
    )?;
    println!(
        "attach: formatted {} (LUKS1, {} bits master key), libvirt secret usage {} {}",
        attached.formatted,
        attached.volume.master_key().len() * 8,
        attached.libvirt_secret.usage_type(),
        attached.libvirt_secret.usage_id()
    );
    println!("libvirt secret XML: {}", attached.libvirt_secret.xml());
    let text = b"Hello, world: written through LUKS";
    attached.volume.write_at(0, text)?;
    attached.volume.sync()?;
    drop(attached);

    // A second attach opens the same volume and reads the data back.
    let mut again = attach(
        &store,
        &user,
        volume.id,
        &volume.encryption_metadata(),
        &file,
        &opts,
    )?;
    let mut back = vec![0u8; text.len()];
    again.volume.read_at(0, &mut back)?;
    println!(
        "second attach: formatted {}, read back {:?}",
        again.formatted,
        String::from_utf8_lossy(&back)
    );
    if back != text {
        return Err("data read through LUKS differs".into());
    }
    let raw = std::fs::read(&file)?;
    let start = again.volume.payload_start() as usize;
    if raw[start..start + text.len()] == text[..] {
        return Err("the payload on disk is plaintext".into());
    }
    drop(again);

    // Snapshot shares the key; a volume from the snapshot gets its own copy.
    let snapshot = keys.snapshot(&volume);
    let from_snapshot = keys.volume_from_snapshot(&user, &snapshot)?;
    println!(
        "snapshot {} shares key {}; volume from snapshot {} has key {}",
        snapshot.id, snapshot.key_id, from_snapshot.id, from_snapshot.key_id
    );
    let refused = keys.delete_volume(&user, &volume, std::slice::from_ref(&snapshot));
    println!("delete with a snapshot: {}", refused.unwrap_err());
    keys.delete_snapshot(snapshot);
    keys.delete_volume(&user, &volume, &[])?;
    keys.delete_volume(&user, &from_snapshot, &[])?;
    let left = store.list_secrets(&user, &ListQuery::default())?;
    println!("volumes deleted; {} secrets left", left.total);
    Ok(())
}
