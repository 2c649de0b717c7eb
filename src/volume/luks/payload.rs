//! The encrypted payload of a volume in a file: whole encryption units
//! read and decrypted, or encrypted and written, in place. LUKS1, LUKS2
//! and plain dm-crypt volumes all keep their data this way; only where
//! the payload starts and its first IV differ.

use std::fs::File;

use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};
use crate::volume::luks::crypto::{IV_SECTOR, SectorCipher, last_iv};
use crate::volume::luks::{read_exact_at, write_at};

/// Units processed per read or write call on the payload.
const CHUNK_UNITS: usize = 256;

/// A payload: `len` bytes (whole units) from byte `start` of the file,
/// unit k's IV sector `iv_tweak + k * unit / 512`.
pub(crate) struct Payload {
    file: File,
    cipher: SectorCipher,
    start: u64,
    len: u64,
    iv_tweak: u64,
    /// False when the file was opened read-only: writes are refused with a
    /// typed error before anything is encrypted or written.
    writable: bool,
}

impl Payload {
    /// Checks what the header said: the payload's end and every unit's IV
    /// fit 64 bits (a crafted `iv_tweak` or size is refused here, before
    /// any sector is touched).
    pub(crate) fn new(
        file: File,
        cipher: SectorCipher,
        start: u64,
        len: u64,
        iv_tweak: u64,
    ) -> Result<Self> {
        let unit = cipher.unit() as u64;
        let len = len / unit * unit;
        if start.checked_add(len).is_none() {
            return Err(Error::invalid("offset", "the payload ends past 2^64 bytes"));
        }
        let units = len / unit;
        if units > 0 && last_iv(iv_tweak, units - 1, unit / IV_SECTOR).is_none() {
            return Err(Error::invalid(
                "iv_tweak",
                "the payload's IVs pass the 64-bit sector number",
            ));
        }
        Ok(Payload {
            file,
            cipher,
            start,
            len,
            iv_tweak,
            writable: true,
        })
    }

    /// Marks the payload read-only (its file was opened without write
    /// access): [`Payload::write_at`] and [`Payload::check_writable`] refuse.
    pub(crate) fn set_read_only(&mut self) {
        self.writable = false;
    }

    pub(crate) fn is_read_only(&self) -> bool {
        !self.writable
    }

    /// `PermissionDenied` when the volume was opened read-only.
    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.writable {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::PermissionDenied,
            "the volume was opened read-only; open it read-write to write",
        ))
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn start(&self) -> u64 {
        self.start
    }

    pub(crate) fn cipher(&self) -> &SectorCipher {
        &self.cipher
    }

    pub(crate) fn file_mut(&mut self) -> &mut File {
        &mut self.file
    }

    /// Reads and decrypts `buf.len()` payload bytes from `offset`.
    pub(crate) fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.check_range(offset, buf.len())?;
        let unit = self.cipher.unit() as u64;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let first_unit = pos / unit;
            let skip = (pos % unit) as usize;
            let units = (skip + buf.len() - done)
                .div_ceil(unit as usize)
                .min(CHUNK_UNITS);
            let mut chunk = Zeroizing::new(vec![0u8; units * unit as usize]);
            self.read_units(first_unit, &mut chunk)?;
            let take = (chunk.len() - skip).min(buf.len() - done);
            buf[done..done + take].copy_from_slice(&chunk[skip..skip + take]);
            done += take;
        }
        Ok(())
    }

    /// Encrypts and writes `data` at payload `offset`. Partial units at
    /// either end are read, patched and rewritten.
    pub(crate) fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        self.check_writable()?;
        self.check_range(offset, data.len())?;
        let unit = self.cipher.unit() as u64;
        let mut done = 0usize;
        while done < data.len() {
            let pos = offset + done as u64;
            let first_unit = pos / unit;
            let skip = (pos % unit) as usize;
            let units = (skip + data.len() - done)
                .div_ceil(unit as usize)
                .min(CHUNK_UNITS);
            let mut chunk = Zeroizing::new(vec![0u8; units * unit as usize]);
            let take = (chunk.len() - skip).min(data.len() - done);
            if skip != 0 || take != chunk.len() {
                self.read_units(first_unit, &mut chunk)?;
            }
            chunk[skip..skip + take].copy_from_slice(&data[done..done + take]);
            self.write_units(first_unit, &mut chunk)?;
            done += take;
        }
        Ok(())
    }

    /// Flushes written payload to the disk.
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| Error::new(ErrorKind::Storage, "cannot sync volume").with_source(e))
    }

    fn check_range(&self, offset: u64, len: usize) -> Result<()> {
        match offset.checked_add(len as u64) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(Error::invalid(
                "offset",
                format!(
                    "{len} bytes at {offset} do not fit the {}-byte payload",
                    self.len
                ),
            )),
        }
    }

    /// Unit `index`'s IV sector and byte offset in the file; both were
    /// bounded by `new` for every unit inside the payload.
    fn locate(&self, index: u64) -> Result<(u64, u64)> {
        let unit = self.cipher.unit() as u64;
        let iv = last_iv(self.iv_tweak, index, unit / IV_SECTOR);
        let at = index
            .checked_mul(unit)
            .and_then(|o| o.checked_add(self.start));
        match (iv, at) {
            (Some(iv), Some(at)) => Ok((iv, at)),
            _ => Err(Error::invalid("offset", "sector outside the payload")),
        }
    }

    fn read_units(&mut self, first_unit: u64, buf: &mut [u8]) -> Result<()> {
        let (iv, at) = self.locate(first_unit)?;
        read_exact_at(&mut self.file, at, buf)?;
        self.cipher.decrypt(buf, iv)
    }

    fn write_units(&mut self, first_unit: u64, buf: &mut [u8]) -> Result<()> {
        let (iv, at) = self.locate(first_unit)?;
        self.cipher.encrypt(buf, iv)?;
        write_at(&mut self.file, at, buf, std::path::Path::new("volume"))
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payload")
            .field("cipher", &self.cipher)
            .field("start", &self.start)
            .field("len", &self.len)
            .field("iv_tweak", &self.iv_tweak)
            .field("writable", &self.writable)
            .finish_non_exhaustive()
    }
}
