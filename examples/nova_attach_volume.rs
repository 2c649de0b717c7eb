//! What nova does when it attaches an encrypted volume with QEMU's native
//! LUKS: cinder's encryption metadata in, the key fetched in the user's
//! context, the passphrase derived (lower-case hex of the key), the libvirt
//! secret and the disk's <encryption> element out, and the volume opened
//! (formatted first when it is fresh, never when it is already LUKS).
//! Also shows that a passphrase-type secret is used as it is. Cleans up.

use keywarden::config::Config;
use keywarden::context::Context;
use keywarden::model::{ContentType, ManagedObject, ProjectId, SecretType, UserId};
use keywarden::secret::SecretBytes;
use keywarden::store::{NewSecret, SecretStore};
use keywarden::volume::luks::{LuksHeader, Pbkdf2Cost};
use keywarden::volume::{
    AttachOptions, EncryptionSpec, LibvirtSecret, VolumeKeys, attach, passphrase_for,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("keywarden-nova-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run(&dir);
    std::fs::remove_dir_all(&dir)?;
    result
}

fn run(dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::generate(dir.join("keywarden.db"))?;
    let store = SecretStore::open(&config)?;
    let user = Context::new(UserId::new("demo")?, ProjectId::new("demo")?, ["creator"]);

    // cinder's side, done before nova is asked to attach.
    let spec = EncryptionSpec::parse("luks", "front-end", Some("aes-xts-plain64"), Some("512"))?;
    let volume = VolumeKeys::new(&store).create_volume(&user, &spec)?;
    let metadata = volume.encryption_metadata();
    println!(
        "encryption metadata: provider {} cipher {} key_size {} control {} key {}",
        metadata.provider,
        metadata.cipher.as_deref().unwrap_or("None"),
        metadata.key_size.unwrap_or(0),
        metadata.control_location,
        metadata.encryption_key_id
    );

    let file = dir.join("disk.img");
    std::fs::File::create(&file)?.set_len(8 << 20)?;
    let opts = AttachOptions {
        format_cost: Pbkdf2Cost::Iterations(1000),
        ..AttachOptions::default()
    };
    let attached = attach(&store, &user, volume.id, &metadata, &file, &opts)?;
    let LuksHeader::V1(header) = attached.volume.header() else {
        return Err("nova's native path formats LUKS1".into());
    };
    println!(
        "first attach formatted the volume: {} {}-{} {} bits, payload at sector {}",
        attached.formatted,
        header.cipher_name(),
        header.cipher_mode(),
        header.key_bytes * 8,
        header.payload_offset
    );
    println!(
        "passphrase: {} lower-case hex characters (not shown)",
        attached.libvirt_secret.value().len()
    );
    println!("virSecretDefineXML: {}", attached.libvirt_secret.xml());
    let libvirt_uuid = uuid::Uuid::new_v4();
    println!(
        "disk: {}",
        LibvirtSecret::disk_encryption_xml(&libvirt_uuid)
    );
    drop(attached);

    let again = attach(&store, &user, volume.id, &metadata, &file, &opts)?;
    println!(
        "second attach opened key slot {} without formatting: {}",
        again.volume.opened_slot(),
        !again.formatted
    );
    drop(again);

    // A passphrase secret (nova's qcow2+LUKS images) is used as it is.
    let id = store.store_secret(
        &user,
        NewSecret::new()
            .secret_type(SecretType::Passphrase)
            .payload_bytes(
                SecretBytes::copy_from(b"correct horse battery"),
                ContentType::OctetStream,
            ),
    )?;
    let object = store.get_object(&user, &id)?;
    let pass = passphrase_for(&object);
    println!(
        "passphrase secret used as it is: {}",
        matches!(object, ManagedObject::Passphrase { .. })
            && pass.expose_secret() == b"correct horse battery"
    );

    // Detach: nova deletes the libvirt secret; the key stays with cinder.
    VolumeKeys::new(&store).delete_volume(&user, &volume, &[])?;
    println!("volume deleted with its key");
    Ok(())
}
