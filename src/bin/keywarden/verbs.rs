//! The request verbs (`secret`, `order`, `container`, `project-store`) and
//! how their records are shown.

use super::*;

pub(crate) const SECRET_FIELDS: [&str; 10] = [
    "Secret href",
    "Name",
    "Created",
    "Status",
    "Content types",
    "Algorithm",
    "Bit length",
    "Secret type",
    "Mode",
    "Expiration",
];

pub(crate) fn secret_record(store: &SecretStore, m: &SecretMeta) -> Record {
    let values = [
        Cell::Text(store.secret_href(&m.id)),
        Cell::opt(m.name.as_ref()),
        Cell::Text(m.created.to_string()),
        Cell::Text(m.status.to_string()),
        Cell::opt(m.content_type.map(|c| format!("{{'default': '{c}'}}"))),
        Cell::opt(m.algorithm.as_ref()),
        m.bit_length.map_or(Cell::Null, |b| Cell::Int(b.into())),
        Cell::Text(m.secret_type.to_string()),
        Cell::opt(m.mode.as_ref()),
        Cell::opt(m.expiration),
    ];
    SECRET_FIELDS.iter().copied().zip(values).collect()
}

pub(crate) const ORDER_FIELDS: [&str; 8] = [
    "Order href",
    "Type",
    "Container href",
    "Secret href",
    "Created",
    "Status",
    "Error code",
    "Error message",
];

pub(crate) fn order_record(store: &SecretStore, o: &Order) -> Record {
    let kind = match o.order_type {
        keywarden::model::OrderType::Key => "Key",
        keywarden::model::OrderType::Asymmetric => "Asymmetric",
    };
    let values = [
        Cell::Text(href(store, "orders", o.id)),
        Cell::Text(kind.to_owned()),
        o.container_id.map_or(Cell::Text("N/A".into()), |c| {
            Cell::Text(href(store, "containers", c))
        }),
        o.secret_id.map_or(Cell::Text("N/A".into()), |s| {
            Cell::Text(store.secret_href(&s))
        }),
        Cell::Text(o.created.to_string()),
        Cell::Text(o.status.to_string()),
        o.error_code.map_or(Cell::Null, |c| Cell::Int(c.into())),
        Cell::opt(o.error_reason.as_ref()),
    ];
    ORDER_FIELDS.iter().copied().zip(values).collect()
}

pub(crate) const CONTAINER_FIELDS: [&str; 6] = [
    "Container href",
    "Name",
    "Created",
    "Status",
    "Type",
    "Secrets",
];

pub(crate) fn container_record(store: &SecretStore, c: &Container) -> Record {
    let secrets = c
        .secret_refs
        .iter()
        .map(|(n, id)| format!("{n}={}", store.secret_href(id)))
        .collect::<Vec<_>>()
        .join("\n");
    let values = [
        Cell::Text(href(store, "containers", c.id)),
        Cell::opt(c.name.as_ref()),
        Cell::Text(c.created.to_string()),
        Cell::Text(c.status.to_string()),
        Cell::Text(c.container_type.as_str().to_owned()),
        Cell::Text(secrets),
    ];
    CONTAINER_FIELDS.iter().copied().zip(values).collect()
}

pub(crate) fn show(cli: &Cli, r: &Record) -> CliResult<String> {
    Ok(output::show(r, cli.format, &cli.columns)?)
}

pub(crate) fn parse_time(field: &'static str, text: Option<&str>) -> CliResult<Option<Timestamp>> {
    text.map(|t| {
        Timestamp::parse_iso8601(t)
            .map_err(|_| Failure::Store(Error::invalid(field, "Invalid date for 'expiration'")))
    })
    .transpose()
}

pub(crate) fn bit_length(b: i64) -> CliResult<u32> {
    u32::try_from(b)
        .map_err(|_| Failure::Store(Error::invalid("bit_length", "must be between 1 and 32767")))
}

pub(crate) fn secret_command(
    cli: &Cli,
    store: &SecretStore,
    ctx: &Context,
    cmd: &SecretCommand,
) -> CliResult<String> {
    match cmd {
        SecretCommand::Store(a) => {
            let mut new = NewSecret::new()
                .secret_type(a.secret_type.parse::<SecretType>()?)
                .algorithm(a.algorithm.clone())
                .bit_length(bit_length(a.bit_length)?)
                .mode(a.mode.clone());
            new.name = a.name.clone();
            new.expiration = parse_time("expiration", a.expiration.as_deref())?;
            let from_file = match &a.payload_file {
                Some(path) => Some(secret_input::read_secret(path, "payload")?),
                None => None,
            };
            match (
                a.payload.as_ref().or(from_file.as_ref()),
                &a.payload_content_type,
            ) {
                (Some(p), ct) => {
                    // As python-barbicanclient: a text payload defaults to text/plain.
                    let ct = ct.as_deref().unwrap_or("text/plain");
                    let text = secret_input::secret_text(p, "payload")?;
                    new = new.payload_text(
                        text.as_str(),
                        Some(ct),
                        a.payload_content_encoding.as_deref(),
                    );
                }
                (None, Some(ct)) => new = new.payload_content_type_only(ct),
                (None, None) => {}
            }
            let id = store.store_secret(ctx, new)?;
            show(cli, &secret_record(store, &store.secret(ctx, &id)?))
        }
        SecretCommand::Get {
            secret,
            payload,
            file,
        } => {
            let id: SecretId = parse_ref(secret, "secrets")?;
            if let Some(path) = file {
                let p = store.payload(ctx, &id)?;
                admin::write_private_file(path, p.bytes.expose_secret())?;
                return Ok(String::new());
            }
            if *payload {
                let p = store.payload(ctx, &id)?;
                let text = match std::str::from_utf8(p.bytes.expose_secret()) {
                    Ok(t) => t.to_owned(),
                    // Binary payloads print as base64; --file gives the raw bytes.
                    Err(_) => {
                        base64::engine::general_purpose::STANDARD.encode(p.bytes.expose_secret())
                    }
                };
                let mut record = vec![("Payload", Cell::Text(text))];
                let shown = show(cli, &record);
                // The rendered text is wiped by `main` once written.
                if let Some((_, Cell::Text(t))) = record.first_mut() {
                    zeroize::Zeroize::zeroize(t);
                }
                return shown;
            }
            show(cli, &secret_record(store, &store.secret(ctx, &id)?))
        }
        SecretCommand::List(a) => {
            let query = ListQuery {
                name: a.name.clone(),
                algorithm: a.algorithm.clone(),
                mode: a.mode.clone(),
                bit_length: a.bit_length,
                secret_type: a.secret_type.as_deref().map(str::parse).transpose()?,
                limit: a.limit,
                offset: a.offset,
                ..ListQuery::default()
            };
            let page = store.list_secrets(ctx, &query)?;
            let rows: Vec<Record> = page.items.iter().map(|m| secret_record(store, m)).collect();
            Ok(output::list(
                &SECRET_FIELDS,
                &rows,
                cli.format,
                &cli.columns,
            )?)
        }
        SecretCommand::Update {
            secret,
            payload,
            payload_file,
        } => {
            let id: SecretId = parse_ref(secret, "secrets")?;
            let body = match (payload, payload_file) {
                (Some(p), _) => SecretBytes::copy_from(p.expose_secret()),
                (None, Some(path)) => secret_input::read_secret(path, "payload")?,
                (None, None) => return Err(Failure::Usage("no payload given".into())),
            };
            store.put_payload(ctx, &id, body, "text/plain", None)?;
            Ok(String::new())
        }
        SecretCommand::Delete { secret, force } => {
            let id: SecretId = parse_ref(secret, "secrets")?;
            store.delete_secret(ctx, &id, *force)?;
            Ok(String::new())
        }
        SecretCommand::Order(cmd) => order_command(cli, store, ctx, cmd),
        SecretCommand::Container(cmd) => container_command(cli, store, ctx, cmd),
    }
}

pub(crate) fn order_command(
    cli: &Cli,
    store: &SecretStore,
    ctx: &Context,
    cmd: &OrderCommand,
) -> CliResult<String> {
    match cmd {
        OrderCommand::Create { kind, args } => {
            let expiration = parse_time("expiration", args.expiration.as_deref())?;
            let order = if kind == "key" {
                store.create_key(
                    ctx,
                    &KeyOrder {
                        name: args.name.clone(),
                        algorithm: args.algorithm.clone(),
                        bit_length: bit_length(args.bit_length)?,
                        mode: args.mode.clone(),
                        payload_content_type: args.payload_content_type.clone(),
                        expiration,
                    },
                )?
            } else {
                store.create_key_pair(
                    ctx,
                    &KeyPairOrder {
                        name: args.name.clone(),
                        algorithm: args.algorithm.clone(),
                        bit_length: bit_length(args.bit_length)?,
                        expiration,
                        passphrase: match (&args.passphrase, &args.passphrase_file) {
                            (Some(p), _) => Some(SecretBytes::copy_from(p.expose_secret())),
                            (None, Some(path)) => {
                                Some(secret_input::read_secret(path, "passphrase")?)
                            }
                            (None, None) => None,
                        },
                    },
                )?
            };
            let shown = show(cli, &order_record(store, &order))?;
            if order.status == keywarden::model::Status::Error {
                // Orders run synchronously here: a script must be able to
                // tell that no key was made. The order itself is recorded.
                print!("{shown}");
                return Err(Failure::Store(Error::new(
                    ErrorKind::Unsupported,
                    format!(
                        "order {} finished in ERROR ({}): {}",
                        order.id,
                        order.error_code.unwrap_or(500),
                        order.error_reason.as_deref().unwrap_or("no reason given")
                    ),
                )));
            }
            Ok(shown)
        }
        OrderCommand::Get { order } => {
            let id: OrderId = parse_ref(order, "orders")?;
            show(cli, &order_record(store, &store.order(ctx, &id)?))
        }
        OrderCommand::List { limit, offset } => {
            let page = store.list_orders(ctx, *limit, *offset)?;
            let rows: Vec<Record> = page.items.iter().map(|o| order_record(store, o)).collect();
            Ok(output::list(
                &ORDER_FIELDS,
                &rows,
                cli.format,
                &cli.columns,
            )?)
        }
        OrderCommand::Delete { order } => {
            let id: OrderId = parse_ref(order, "orders")?;
            store.delete_order(ctx, &id)?;
            Ok(String::new())
        }
    }
}

pub(crate) fn container_command(
    cli: &Cli,
    store: &SecretStore,
    ctx: &Context,
    cmd: &ContainerCommand,
) -> CliResult<String> {
    match cmd {
        ContainerCommand::Get { container } => {
            let id: ContainerId = parse_ref(container, "containers")?;
            show(cli, &container_record(store, &store.container(ctx, &id)?))
        }
        ContainerCommand::List { limit, offset } => {
            let page = store.list_containers(ctx, *limit, *offset)?;
            let rows: Vec<Record> = page
                .items
                .iter()
                .map(|c| container_record(store, c))
                .collect();
            Ok(output::list(
                &CONTAINER_FIELDS,
                &rows,
                cli.format,
                &cli.columns,
            )?)
        }
        ContainerCommand::Delete { container } => {
            let id: ContainerId = parse_ref(container, "containers")?;
            store.delete_container(ctx, &id)?;
            Ok(String::new())
        }
    }
}

/// `project-store` acts as the given identity within PROJECT: Barbican's
/// preferred-store rules (admin) decide.
pub(crate) fn project_store_command(
    cli: &Cli,
    store: &SecretStore,
    cmd: &ProjectStoreCommand,
) -> CliResult<String> {
    let (project, backend) = match cmd {
        ProjectStoreCommand::Set { project, backend } => (project, Some(backend)),
        ProjectStoreCommand::Show { project } | ProjectStoreCommand::Clear { project } => {
            (project, None)
        }
    };
    let ctx = Context::new(
        UserId::new(cli.user.clone())?,
        ProjectId::new(project.clone())?,
        cli.roles.split(','),
    );
    match cmd {
        ProjectStoreCommand::Set { .. } => {
            let backend = BackendId::new(backend.cloned().unwrap_or_default())?;
            store.set_project_backend(&ctx, &backend)?;
        }
        ProjectStoreCommand::Clear { .. } => store.clear_project_backend(&ctx)?,
        ProjectStoreCommand::Show { .. } => {}
    }
    let (backend, mapped) = store.project_backend(&ctx)?;
    show(
        cli,
        &vec![
            ("Project", Cell::Text(ctx.project_id.to_string())),
            ("Backend", Cell::Text(backend.to_string())),
            (
                "Source",
                Cell::Text(
                    if mapped {
                        "project mapping"
                    } else {
                        "global default"
                    }
                    .to_owned(),
                ),
            ),
        ],
    )
}
