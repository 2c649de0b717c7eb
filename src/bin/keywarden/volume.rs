//! `keywarden volume …`: for operators who must open an encrypted volume by
//! hand. The key is named by its secret href or id; the passphrase is
//! derived from it as os-brick derives it.

use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use keywarden::model::SecretId;
use keywarden::secret::SecretBytes;
use keywarden::volume::luks::{FormatOptions, LuksHeader, LuksVolume, Pbkdf2Cost};
use keywarden::volume::{CipherSpec, fetch_passphrase};
use keywarden::{Error, ErrorKind};

use crate::output::Cell;
use crate::{Cli, CliResult, Failure, admin, context, open_store, parse_ref, show};

#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// Print the LUKS passphrase for a key (lower-case hex of the key bytes;
    /// a passphrase secret as it is). No newline unless stdout is a
    /// terminal, so it can be piped to `cryptsetup --key-file=-`.
    Passphrase { key: String },
    /// Format FILE as LUKS1 with the key's passphrase in key slot 0.
    /// Refuses a file that is already LUKS.
    Format {
        file: PathBuf,
        #[command(flatten)]
        key: KeyArg,
        #[arg(long, default_value = "aes-xts-plain64")]
        cipher: String,
        /// The whole XTS key in bits, as cryptsetup counts it (256 is
        /// AES-128-XTS, 512 is AES-256-XTS).
        #[arg(long = "key-size", default_value = "512", value_parser = ["256", "384", "512"])]
        key_size: String,
        /// PBKDF2 iterations for the key slot and digest (default: 2 s
        /// measured on this machine, as cryptsetup does).
        #[arg(long = "pbkdf2-iterations")]
        pbkdf2_iterations: Option<u32>,
    },
    /// Show FILE's LUKS header, as `cryptsetup luksDump` does.
    Dump { file: PathBuf },
    /// Exit 0 when the key's passphrase opens FILE.
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
    },
    /// Write FILE's whole decrypted payload to RAW (mode 0600).
    Read {
        file: PathBuf,
        #[command(flatten)]
        key: KeyArg,
        #[arg(long)]
        output: PathBuf,
    },
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
        } => {
            let pass = passphrase(cli, &key.key)?;
            let cipher: CipherSpec = cipher.parse()?;
            let cost = match pbkdf2_iterations {
                Some(n) => Pbkdf2Cost::Iterations(*n),
                None => Pbkdf2Cost::default(),
            };
            let opts = FormatOptions::default()
                .with_cipher(cipher)
                .with_key_bytes(key_size.parse::<usize>().unwrap_or(512) / 8)
                .with_cost(cost);
            let vol = LuksVolume::format(file, &pass, &opts)?;
            summary(cli, file, &vol)
        }
        VolumeCommand::Dump { file } => Ok(LuksHeader::read(file)?.to_string()),
        VolumeCommand::Check { file, key } => {
            let vol = LuksVolume::open(file, &passphrase(cli, &key.key)?)?;
            summary(cli, file, &vol)
        }
        VolumeCommand::Write { file, key, input } => {
            let data =
                zeroize::Zeroizing::new(std::fs::read(input).map_err(|e| {
                    Failure::Usage(format!("cannot read {}: {e}", input.display()))
                })?);
            let mut vol = LuksVolume::open(file, &passphrase(cli, &key.key)?)?;
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
            vol.sync()?;
            show(
                cli,
                &vec![
                    ("File", Cell::Text(file.display().to_string())),
                    ("Bytes written", Cell::Int(data.len() as u64)),
                ],
            )
        }
        VolumeCommand::Read { file, key, output } => {
            let mut vol = LuksVolume::open(file, &passphrase(cli, &key.key)?)?;
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
