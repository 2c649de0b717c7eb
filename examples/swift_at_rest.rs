//! Swift at-rest encryption with its root secret held in keywarden (the
//! seed guide's chapter 6): configure a root secret, put and get objects,
//! rotate to a new root secret, and read the old objects.
//!
//! The "object server" here is a directory: each object is its encrypted
//! body plus the crypto-meta swift would keep in the object's sysmeta.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::path::PathBuf;

use keywarden::config::Config;
use keywarden::context::Context;
use keywarden::model::{ProjectId, UserId};
use keywarden::object_keys::{
    BodyCryptoMeta, KeymasterConfig, ObjectKeyMaster, ObjectPath, RootSecretId, UnknownSecretId,
};
use keywarden::store::{KeyOrder, SecretStore};

/// Objects on "disk": body file + crypto-meta header value.
struct ObjectServer {
    dir: PathBuf,
    meta: BTreeMap<String, String>,
}

impl ObjectServer {
    fn put(
        &mut self,
        km: &ObjectKeyMaster,
        path: &ObjectPath,
        body: impl Read,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let file = self.body_file(path);
        let out = BufWriter::new(File::create(&file)?);
        let meta = km.encrypt_object(path, body, out)?;
        // X-Object-Sysmeta-Crypto-Body-Meta
        self.meta.insert(path.to_string(), meta.to_header());
        Ok(())
    }

    fn get(&self, km: &ObjectKeyMaster, path: &ObjectPath) -> keywarden::Result<Vec<u8>> {
        let meta = BodyCryptoMeta::from_header(&self.meta[&path.to_string()])?;
        let stored = BufReader::new(File::open(self.body_file(path)).expect("object exists"));
        let mut body = Vec::new();
        km.decrypt_object(path, &meta, stored, &mut body)?;
        Ok(body)
    }

    fn body_file(&self, path: &ObjectPath) -> PathBuf {
        let name: String = path
            .to_string()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        self.dir.join(name)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let config = Config::generate(dir.path().join("keywarden.db"))?;
    let store = SecretStore::open(&config)?;
    // The swift service user in its service project.
    let swift = Context::new(
        UserId::new("swift")?,
        ProjectId::new("service")?,
        ["creator"],
    );

    // `openstack secret order create --algorithm aes --bit-length 256 --mode ctr key`
    let first = store
        .create_key(
            &swift,
            &KeyOrder {
                mode: Some("ctr".into()),
                ..KeyOrder::aes(256)
            },
        )?
        .secret_id
        .expect("key orders complete at once");
    println!("root secret 1: {}", store.secret_href(&first));

    // [kms_keymaster] key_id = <first>
    let first_id = first.to_string();
    let km = ObjectKeyMaster::load(
        &store,
        &swift,
        &KeymasterConfig::from_options([("key_id", first_id.as_str())])?,
    )?;
    let mut server = ObjectServer {
        dir: dir.path().join("objects"),
        meta: BTreeMap::new(),
    };
    std::fs::create_dir_all(&server.dir)?;

    let small = ObjectPath::new("AUTH_demo", "photos", "cat.jpg")?;
    let large = ObjectPath::new("AUTH_demo", "backups", "2026/11/db.tar")?;
    let large_len = 8 * 1024 * 1024 + 123;
    server.put(&km, &small, &b"meow"[..])?;
    server.put(&km, &large, PatternReader::new(large_len))?;
    println!("put {small} and {large} ({large_len} bytes, streamed in 64 KiB chunks)");
    assert_eq!(server.get(&km, &small)?, b"meow");
    assert!(PatternReader::matches(&server.get(&km, &large)?, large_len));
    println!(
        "get both back intact under root secret {} (swift's name for the un-suffixed key_id)",
        km.active_secret_id()
    );
    let on_disk = std::fs::read(server.body_file(&small))?;
    assert_ne!(on_disk, b"meow", "bodies are encrypted at rest");

    // Rotation: add a second root secret everywhere, then make it active.
    // The first one stays configured: objects still name it in their key_id.
    let second = store
        .create_key(&swift, &KeyOrder::aes(256))?
        .secret_id
        .expect("complete");
    let second_id = second.to_string();
    let rotated = ObjectKeyMaster::load(
        &store,
        &swift,
        &KeymasterConfig::from_options([
            ("key_id", first_id.as_str()),
            ("key_id_2026", second_id.as_str()),
            ("active_root_secret_id", "2026"),
        ])?,
    )?;
    println!(
        "rotated: active root secret is now {}",
        rotated.active_secret_id()
    );
    let fresh = ObjectPath::new("AUTH_demo", "photos", "dog.jpg")?;
    server.put(&rotated, &fresh, &b"woof"[..])?;
    assert_eq!(server.get(&rotated, &fresh)?, b"woof");
    assert_eq!(server.get(&rotated, &small)?, b"meow");
    assert!(PatternReader::matches(
        &server.get(&rotated, &large)?,
        large_len
    ));
    println!("old objects still read after the rotation; new ones use root secret 2026");

    // Dropping the old root secret would strand the old objects: refused, typed.
    let only_new = ObjectKeyMaster::load(
        &store,
        &swift,
        &KeymasterConfig::from_options([
            ("key_id_2026", second_id.as_str()),
            ("active_root_secret_id", "2026"),
        ])?,
    )?;
    let err = server
        .get(&only_new, &small)
        .expect_err("old root secret gone");
    let missing = std::error::Error::source(&err)
        .and_then(|s| s.downcast_ref::<UnknownSecretId>())
        .expect("typed cause");
    assert_eq!(missing.0, RootSecretId::DEFAULT);
    println!("without the old root secret: {err}");
    println!("swift_at_rest: done");
    Ok(())
}

/// A large body produced on the fly, so nothing holds it whole.
struct PatternReader {
    pos: usize,
    len: usize,
}

impl PatternReader {
    fn new(len: usize) -> Self {
        PatternReader { pos: 0, len }
    }

    fn byte(i: usize) -> u8 {
        (i.wrapping_mul(2_654_435_761) >> 13) as u8
    }

    fn matches(body: &[u8], len: usize) -> bool {
        body.len() == len && body.iter().enumerate().all(|(i, b)| *b == Self::byte(i))
    }
}

impl Read for PatternReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.len - self.pos);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = Self::byte(self.pos + i);
        }
        self.pos += n;
        Ok(n)
    }
}
