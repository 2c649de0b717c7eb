//! `keywarden volume …`: for operators who must open an encrypted volume by
//! hand. The key is named by its secret href or id; the passphrase is
//! derived from it as os-brick derives it. `read`, `write` and `check`
//! take `--plain` for volumes of os-brick's `plain` provider (dm-crypt
//! plain mode, no header).

use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use keywarden::model::SecretId;
use keywarden::secret::SecretBytes;
use keywarden::volume::luks::{
    Argon2Cost, FormatOptions, LuksHeader, LuksVersion, LuksVolume, Pbkdf2Cost,
};
use keywarden::volume::{
    BlockMode, CipherSpec, EncryptionSpec, PlainHash, PlainOptions, PlainVolume, fetch_passphrase,
};
use keywarden::{Error, ErrorKind};

use crate::output::Cell;
use crate::{Cli, CliResult, Failure, admin, context, open_store, parse_ref, show};

#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// Print the LUKS passphrase for a key (lower-case hex of the key bytes;
    /// a passphrase secret as it is). No newline unless stdout is a
    /// terminal, so it can be piped to `cryptsetup --key-file=-`.
    Passphrase { key: String },
    /// Format FILE as LUKS1 (or LUKS2 with --type luks2) with the key's
    /// passphrase in key slot 0.
    /// Refuses a file that is already LUKS (a header at byte 0 or a LUKS2
    /// secondary header) or holds data where the header goes, unless
    /// --danger-overwrite-existing-data.
    Format {
        file: PathBuf,
        #[command(flatten)]
        key: KeyArg,
        /// aes-xts-plain64, aes-xts-plain, aes-cbc-essiv:sha256,
        /// aes-cbc-plain64 or aes-cbc-plain.
        #[arg(long, default_value = "aes-xts-plain64")]
        cipher: String,
        /// The key in bits, as cryptsetup counts it: for XTS the whole key
        /// (256 is AES-128-XTS, 512 AES-256-XTS; default 512), for CBC the
        /// AES key (128, 192 or 256; default 256).
        #[arg(long = "key-size")]
        key_size: Option<u32>,
        /// PBKDF2 iterations for the key slot and digest (default: 2 s
        /// measured on this machine, as cryptsetup does).
        #[arg(long = "pbkdf2-iterations")]
        pbkdf2_iterations: Option<u32>,
        /// luks1 or luks2 (cryptsetup's --type).
        #[arg(long = "type", default_value = "luks1")]
        luks_type: String,
        /// LUKS2 key slot KDF: argon2id (cryptsetup's LUKS2 default: 1 GiB,
        /// 4 passes) or pbkdf2.
        #[arg(long, default_value = "argon2id")]
        pbkdf: String,
        /// LUKS2 Argon2id passes (cryptsetup's --pbkdf-force-iterations).
        #[arg(long = "argon2-time")]
        argon2_time: Option<u32>,
        /// LUKS2 Argon2id memory in KiB (cryptsetup's --pbkdf-memory).
        #[arg(long = "argon2-memory-kib")]
        argon2_memory_kib: Option<u32>,
        /// LUKS2 encryption sector size: 512 to 4096.
        #[arg(long = "sector-size", default_value_t = 512)]
        sector_size: u32,
        /// Format even over a LUKS header or other data, destroying it.
        #[arg(long = "danger-overwrite-existing-data")]
        overwrite: bool,
    },
    /// Show FILE's LUKS header, as `cryptsetup luksDump` does.
    Dump { file: PathBuf },
    /// Exit 0 when the key's passphrase opens FILE (LUKS only: a plain
    /// volume has no header to check a key against).
    Check {
        file: PathBuf,
        #[command(flatten)]
        key: KeyArg,
    },
    /// Write the bytes of RAW into FILE's payload from its first sector.
    Write {
        file: PathBuf,
        #[command(flatten)]
        key: KeyArg,
        #[arg(long)]
        input: PathBuf,
        #[command(flatten)]
        plain: PlainArgs,
    },
    /// Write FILE's whole decrypted payload to RAW (mode 0600).
    Read {
        file: PathBuf,
        #[command(flatten)]
        key: KeyArg,
        #[arg(long)]
        output: PathBuf,
        #[command(flatten)]
        plain: PlainArgs,
    },
}

/// dm-crypt plain mode, as `cryptsetup open --type plain` takes it. With
/// os-brick's `plain` provider, pass the volume type's cipher and key size
/// (or nothing, for cryptsetup's defaults). A wrong key cannot be detected:
/// it reads noise.
#[derive(Args, Debug)]
pub struct PlainArgs {
    /// FILE is a plain dm-crypt volume (no LUKS header).
    #[arg(long)]
    plain: bool,
    /// Plain-mode cipher (default aes-cbc-essiv:sha256).
    #[arg(long = "plain-cipher", requires = "plain")]
    plain_cipher: Option<String>,
    /// Plain-mode key size in bits (default 256).
    #[arg(long = "plain-key-size", requires = "plain")]
    plain_key_size: Option<u32>,
    /// Passphrase hash: ripemd160 (default), sha1, sha256, sha512, plain.
    #[arg(long = "plain-hash", requires = "plain")]
    plain_hash: Option<String>,
    /// Payload start in 512-byte sectors (cryptsetup --offset).
    #[arg(long = "plain-offset", requires = "plain", default_value_t = 0)]
    plain_offset: u64,
    /// IV sector of the first payload sector (cryptsetup --skip).
    #[arg(long = "plain-skip", requires = "plain", default_value_t = 0)]
    plain_skip: u64,
}

impl PlainArgs {
    fn options(&self) -> CliResult<Option<PlainOptions>> {
        if !self.plain {
            return Ok(None);
        }
        let key_size = self.plain_key_size.map(|k| k.to_string());
        let spec = EncryptionSpec::parse(
            "plain",
            "front-end",
            self.plain_cipher.as_deref(),
            key_size.as_deref(),
        )?;
        let mut opts = PlainOptions::from_spec(&spec)?
            .with_offset(self.plain_offset)
            .with_skip(self.plain_skip);
        if let Some(h) = &self.plain_hash {
            opts = opts.with_hash(PlainHash::parse(h)?);
        }
        Ok(Some(opts))
    }
}

/// A LUKS or plain volume, opened for `read` and `write`.
enum Opened {
    Luks(LuksVolume),
    Plain(PlainVolume),
}

impl Opened {
    fn open(cli: &Cli, file: &std::path::Path, key: &str, plain: &PlainArgs) -> CliResult<Self> {
        let opts = plain.options()?;
        let pass = passphrase(cli, key)?;
        Ok(match opts {
            Some(o) => Opened::Plain(PlainVolume::open(file, &pass, &o)?),
            None => Opened::Luks(LuksVolume::open(file, &pass)?),
        })
    }

    fn payload_len(&self) -> u64 {
        match self {
            Opened::Luks(v) => v.payload_len(),
            Opened::Plain(v) => v.payload_len(),
        }
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> keywarden::Result<()> {
        match self {
            Opened::Luks(v) => v.read_at(offset, buf),
            Opened::Plain(v) => v.read_at(offset, buf),
        }
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> keywarden::Result<()> {
        match self {
            Opened::Luks(v) => v.write_at(offset, data)?,
            Opened::Plain(v) => v.write_at(offset, data)?,
        }
        match self {
            Opened::Luks(v) => v.sync(),
            Opened::Plain(v) => v.sync(),
        }
    }
}

#[derive(Args, Debug)]
pub struct KeyArg {
    /// The key: a secret href or id.
    #[arg(long)]
    key: String,
}

pub fn run(cli: &Cli, cmd: &VolumeCommand) -> CliResult<String> {
    match cmd {
        VolumeCommand::Passphrase { key } => {
            let pass = passphrase(cli, key)?;
            let mut out = std::io::stdout().lock();
            let newline: &[u8] = if out.is_terminal() { b"\n" } else { b"" };
            out.write_all(pass.expose_secret())
                .and_then(|()| out.write_all(newline))
                .and_then(|()| out.flush())
                .map_err(|e| Failure::Usage(format!("cannot write to stdout: {e}")))?;
            Ok(String::new())
        }
        VolumeCommand::Format {
            file,
            key,
            cipher,
            key_size,
            pbkdf2_iterations,
            luks_type,
            pbkdf,
            argon2_time,
            argon2_memory_kib,
            sector_size,
            overwrite,
        } => {
            let version = match luks_type.as_str() {
                "luks1" | "luks" => LuksVersion::Luks1,
                "luks2" => LuksVersion::Luks2,
                other => {
                    return Err(Failure::Usage(format!(
                        "--type {other:?}: expected luks1 or luks2"
                    )));
                }
            };
            let argon2 = match (version, pbkdf.as_str()) {
                (LuksVersion::Luks1, _) | (_, "pbkdf2") => None,
                (LuksVersion::Luks2, "argon2id") => {
                    let default = Argon2Cost::default();
                    Some(Argon2Cost {
                        time: argon2_time.unwrap_or(default.time),
                        memory_kib: argon2_memory_kib.unwrap_or(default.memory_kib),
                        cpus: default.cpus,
                    })
                }
                (_, other) => {
                    return Err(Failure::Usage(format!(
                        "--pbkdf {other:?}: expected argon2id or pbkdf2"
                    )));
                }
            };
            let cipher: CipherSpec = cipher.parse()?;
            let bits = key_size.unwrap_or(match cipher.mode {
                BlockMode::Xts => 512,
                BlockMode::Cbc => 256,
            });
            // Refuses a size the cipher does not take, naming what works.
            EncryptionSpec::parse(
                "luks",
                "front-end",
                Some(&cipher.to_string()),
                Some(&bits.to_string()),
            )?;
            let pass = passphrase(cli, &key.key)?;
            let cost = match pbkdf2_iterations {
                Some(n) => Pbkdf2Cost::Iterations(*n),
                None => Pbkdf2Cost::default(),
            };
            let mut opts = FormatOptions::default()
                .with_version(version)
                .with_cipher(cipher)
                .with_key_bytes(bits as usize / 8)
                .with_cost(cost)
                .with_argon2(argon2);
            opts.sector_size = *sector_size;
            if *overwrite {
                opts = opts.danger_overwrite_existing_data();
            }
            let vol = LuksVolume::format(file, &pass, &opts)?;
            summary(cli, file, &vol)
        }
        VolumeCommand::Dump { file } => Ok(LuksHeader::read(file)?.to_string()),
        VolumeCommand::Check { file, key } => {
            let vol = LuksVolume::open(file, &passphrase(cli, &key.key)?)?;
            summary(cli, file, &vol)
        }
        VolumeCommand::Write {
            file,
            key,
            input,
            plain,
        } => {
            let data =
                zeroize::Zeroizing::new(std::fs::read(input).map_err(|e| {
                    Failure::Usage(format!("cannot read {}: {e}", input.display()))
                })?);
            let mut vol = Opened::open(cli, file, &key.key, plain)?;
            if data.len() as u64 > vol.payload_len() {
                return Err(Failure::Store(Error::invalid(
                    "input",
                    format!(
                        "{} bytes do not fit the {}-byte payload",
                        data.len(),
                        vol.payload_len()
                    ),
                )));
            }
            vol.write_at(0, &data)?;
            show(
                cli,
                &vec![
                    ("File", Cell::Text(file.display().to_string())),
                    ("Bytes written", Cell::Int(data.len() as u64)),
                ],
            )
        }
        VolumeCommand::Read {
            file,
            key,
            output,
            plain,
        } => {
            let mut vol = Opened::open(cli, file, &key.key, plain)?;
            let len = usize::try_from(vol.payload_len()).map_err(|_| {
                Failure::Store(Error::new(ErrorKind::TooLarge, "payload too large to read"))
            })?;
            let mut data = zeroize::Zeroizing::new(vec![0u8; len]);
            vol.read_at(0, &mut data)?;
            admin::write_private_file(output, &data)?;
            show(
                cli,
                &vec![
                    ("File", Cell::Text(file.display().to_string())),
                    ("Bytes read", Cell::Int(len as u64)),
                ],
            )
        }
    }
}

fn passphrase(cli: &Cli, key: &str) -> CliResult<SecretBytes> {
    let (_, store) = open_store(&cli.config)?;
    let id: SecretId = parse_ref(key, "secrets")?;
    Ok(fetch_passphrase(&store, &context(cli)?, &id)?)
}

fn summary(cli: &Cli, file: &std::path::Path, vol: &LuksVolume) -> CliResult<String> {
    let (cipher, uuid, offset) = match vol.header() {
        LuksHeader::V1(h) => (
            format!("{}-{}", h.cipher_name(), h.cipher_mode()),
            h.uuid().to_owned(),
            u64::from(h.payload_offset),
        ),
        LuksHeader::V2(h) => (
            h.segments
                .first()
                .map(|s| s.encryption.clone())
                .unwrap_or_default(),
            h.uuid.clone(),
            vol.payload_start() / 512,
        ),
    };
    show(
        cli,
        &vec![
            ("File", Cell::Text(file.display().to_string())),
            ("Version", Cell::Int(vol.header().version().into())),
            ("Cipher", Cell::Text(cipher)),
            ("Key bits", Cell::Int(vol.master_key().len() as u64 * 8)),
            ("Payload offset", Cell::Int(offset)),
            ("Payload bytes", Cell::Int(vol.payload_len())),
            ("UUID", Cell::Text(uuid)),
            ("Key slot", Cell::Int(vol.opened_slot() as u64)),
        ],
    )
}
