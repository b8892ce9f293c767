// Included by `store/mod.rs` once per driver, in a module that names the driver `DB`: sqlx
// ties a query's arguments to its text's lifetime generically, but for each concrete driver
// the borrow shortens, so the rows are bound by reference without a generic function.

/// `INSERT` of `rows` in statements of at most [`MAX_PARAMS`] values, each value bound
/// straight from its row.
async fn insert_rows<'a, T>(
    conn: &mut <DB as sqlx::Database>::Connection,
    head: &str,
    tail: &str,
    cols: usize,
    rows: &'a [T],
    mut bind: impl FnMut(&mut sqlx::query_builder::Separated<'_, 'a, DB, &'static str>, &'a T),
) -> anyhow::Result<()> {
    let per = (MAX_PARAMS / cols).max(1);
    for chunk in rows.chunks(per) {
        let mut q = sqlx::QueryBuilder::<DB>::new(head);
        q.push(" ");
        q.push_values(chunk, |mut b, row| bind(&mut b, row));
        q.push(" ");
        q.push(tail);
        // Only full chunks repeat their text; caching the rest would fill the statement cache.
        q.build()
            .persistent(chunk.len() == per)
            .execute(&mut *conn)
            .await
            .with_context(|| format!("writing {head}"))?;
    }
    Ok(())
}

/// [`Store::materialize`] on one driver.
pub(super) async fn materialize(
    conn: &mut <DB as sqlx::Database>::Connection,
    ch: &Changes,
    requests: &[RequestRecord],
    through: i64,
) -> anyhow::Result<()> {
    const SKIP: &str = "ON CONFLICT DO NOTHING";
    let mut tx = conn.begin().await?;
    let c = &mut *tx;
    if !ch.accounts.is_empty() {
        let rows: Vec<(&Account, String)> = ch.accounts.values().map(|a| (a, a.currency.to_string())).collect();
        insert_rows(
            c,
            "INSERT INTO accounts (id, municipality_id, kind, currency, owner_id, event_id, balance, held, created_at)",
            "ON CONFLICT (id) DO UPDATE SET balance = excluded.balance, held = excluded.held",
            9,
            &rows,
            |b, (a, currency)| {
                b.push_bind(a.id)
                    .push_bind(a.municipality)
                    .push_bind(a.kind.as_str())
                    .push_bind(currency.as_str())
                    .push_bind(a.owner)
                    .push_bind(event_id(a.event))
                    .push_bind(a.balance)
                    .push_bind(a.held)
                    .push_bind(a.created_at);
            },
        )
        .await?;
    }
    insert_rows(
        c,
        "INSERT INTO municipalities (id, prefecture_code, prefecture, name, kind, expiry_days, treasury_account, breakage_account)",
        SKIP,
        8,
        &ch.municipalities,
        |b, m| {
            b.push_bind(m.id)
                .push_bind(m.prefecture_code.as_str())
                .push_bind(m.prefecture.as_str())
                .push_bind(m.name.as_str())
                .push_bind(m.kind.as_str())
                .push_bind(m.expiry_days)
                .push_bind(m.treasury)
                .push_bind(m.breakage);
        },
    )
    .await?;
    insert_rows(
        c,
        "INSERT INTO partners (id, name, name_en, point_kind, exchange_method, clearing_account)",
        SKIP,
        6,
        &ch.partners,
        |b, p| {
            b.push_bind(p.id)
                .push_bind(p.name.as_str())
                .push_bind(p.name_en.as_str())
                .push_bind(p.point_kind.as_str())
                .push_bind(p.exchange_method.as_str())
                .push_bind(p.clearing);
        },
    )
    .await?;
    insert_rows(c, "INSERT INTO shops (id, municipality_id, name, receivable_account)", SKIP, 4, &ch.shops, |b, s| {
        b.push_bind(s.id).push_bind(s.municipality).push_bind(s.name.as_str()).push_bind(s.receivable);
    })
    .await?;
    insert_rows(c, "INSERT INTO events (id, municipality_id, name, expires_at)", SKIP, 4, &ch.events, |b, e| {
        b.push_bind(e.id).push_bind(e.municipality).push_bind(e.name.as_str()).push_bind(e.expires_at);
    })
    .await?;
    insert_rows(
        c,
        "INSERT INTO residents (id, municipality_id, reserved_account, created_at)",
        SKIP,
        4,
        &ch.residents,
        |b, r| {
            b.push_bind(r.id).push_bind(r.home).push_bind(r.reserved).push_bind(r.created_at);
        },
    )
    .await?;
    // A memo journaled by a version that did not check texts may hold what the tables refuse
    // (PostgreSQL: NUL). Its row gets the memo with those characters replaced, and its leaf
    // keeps the original bytes, so the log and mirrors are unchanged and the audit names the
    // transaction (docs/operations.md, "The materialiser is stuck").
    let memos: Vec<Option<std::borrow::Cow<'_, str>>> =
        ch.transactions.iter().map(|t| t.memo.as_deref().map(storable_memo)).collect();
    if !ch.transactions.is_empty() {
        let ids = uuid_texts(ch.transactions.iter().map(|t| t.id));
        let rows: Vec<_> = ch.transactions.iter().zip(&ids).zip(&memos).map(|((t, id), m)| (t, id, m)).collect();
        insert_rows(
            c,
            "INSERT INTO transactions (seq, id, municipality_id, kind, memo, created_at)",
            SKIP,
            6,
            &rows,
            |b, (t, id, memo)| {
                b.push_bind(t.seq)
                    .push_bind(uuid_str(id))
                    .push_bind(t.municipality)
                    .push_bind(t.kind.as_str())
                    .push_bind(memo.as_deref())
                    .push_bind(t.created_at);
            },
        )
        .await?;
        let rows: Vec<_> = ch
            .transactions
            .iter()
            .flat_map(|t| t.postings.iter().enumerate().map(move |(leg, p)| (t, leg as i64, p)))
            .collect();
        insert_rows(
            c,
            "INSERT INTO postings (seq, leg, account_id, amount, balance_after, created_at)",
            SKIP,
            6,
            &rows,
            |b, (t, leg, p)| {
                b.push_bind(t.seq)
                    .push_bind(*leg)
                    .push_bind(p.account)
                    .push_bind(p.amount)
                    .push_bind(p.balance_after)
                    .push_bind(t.created_at);
            },
        )
        .await?;
    }
    if !ch.lots.is_empty() {
        let rows: Vec<&Lot> = ch.lots.values().collect();
        insert_rows(
            c,
            "INSERT INTO lots (id, account_id, seq, source, partner_id, amount, remaining, expires_at, created_at)",
            "ON CONFLICT (id) DO UPDATE SET remaining = excluded.remaining",
            9,
            &rows,
            |b, l| {
                b.push_bind(l.id)
                    .push_bind(l.account)
                    .push_bind(l.seq)
                    .push_bind(l.source.as_str())
                    .push_bind(l.partner)
                    .push_bind(l.amount)
                    .push_bind(l.remaining)
                    .push_bind(l.expires_at)
                    .push_bind(l.created_at);
            },
        )
        .await?;
    }
    if !ch.holds.is_empty() {
        let ids = uuid_texts(ch.holds.keys().copied());
        let rows: Vec<_> = ch.holds.values().zip(&ids).collect();
        insert_rows(
            c,
            "INSERT INTO holds (id, account_id, shop_account, amount, state, expires_at, capture_seq, created_at, resolved_at)",
            "ON CONFLICT (id) DO UPDATE SET state = excluded.state, capture_seq = excluded.capture_seq, resolved_at = excluded.resolved_at",
            9,
            &rows,
            |b, (h, id)| {
                b.push_bind(uuid_str(id))
                    .push_bind(h.account)
                    .push_bind(h.shop_account)
                    .push_bind(h.amount)
                    .push_bind(h.state.as_str())
                    .push_bind(h.expires_at)
                    .push_bind(h.capture_seq)
                    .push_bind(h.created_at)
                    .push_bind(h.resolved_at);
            },
        )
        .await?;
    }
    if !ch.vouchers.is_empty() {
        // Texts bound by reference live here for the statement's life.
        let texts: Vec<(String, String)> = ch
            .vouchers
            .values()
            .map(|v| (v.id.to_string(), serde_json::to_string(&v.lots).expect("pairs of integers")))
            .collect();
        let rows: Vec<_> = ch.vouchers.values().zip(&texts).collect();
        insert_rows(
            c,
            "INSERT INTO vouchers (number, id, resident_id, account_id, municipality_id, amount, state, issued_by, \
             issued_at, expires_at, lots, issue_seq, settled_at, settled_by, settle_seq)",
            "ON CONFLICT (number) DO UPDATE SET state = excluded.state, settled_at = excluded.settled_at, \
             settled_by = excluded.settled_by, settle_seq = excluded.settle_seq",
            15,
            &rows,
            |b, (v, (id, lots))| {
                b.push_bind(v.number as i64)
                    .push_bind(id.as_str())
                    .push_bind(v.resident)
                    .push_bind(v.account)
                    .push_bind(v.municipality)
                    .push_bind(v.amount)
                    .push_bind(v.state.as_str())
                    .push_bind(v.issued_by)
                    .push_bind(v.issued_at)
                    .push_bind(v.expires_at)
                    .push_bind(lots.as_str())
                    .push_bind(v.issue_seq)
                    .push_bind(v.settled_at)
                    .push_bind(v.settled_by)
                    .push_bind(v.settle_seq);
            },
        )
        .await?;
    }
    insert_rows(c, "INSERT INTO notices (id, resident_id, kind, payload, created_at)", SKIP, 5, &ch.notices, |b, n| {
        b.push_bind(n.id)
            .push_bind(n.resident)
            .push_bind(n.kind.as_str())
            .push_bind(n.payload.as_str())
            .push_bind(n.created_at);
    })
    .await?;
    if !requests.is_empty() {
        let ids = uuid_texts(requests.iter().map(|r| r.id));
        let rows: Vec<_> = requests.iter().zip(&ids).collect();
        insert_rows(
            c,
            "INSERT INTO requests (seq, id, fingerprint, status, response, created_at)",
            SKIP,
            6,
            &rows,
            |b, (r, id)| {
                b.push_bind(r.seq)
                    .push_bind(uuid_str(id))
                    .push_bind(r.fingerprint.as_str())
                    .push_bind(i64::from(r.status))
                    .push_bind(r.body.as_str())
                    .push_bind(r.created_at);
            },
        )
        .await?;
    }
    // A transaction's leaf written with its transaction is stored without its bytes: they
    // follow from the transaction's rows (`Store::leaf_bytes`), and the leaf hash keeps them
    // honest. A mirror writes leaves alone, with their bytes.
    let with_rows: std::collections::HashSet<i64, foldhash::fast::RandomState> = ch
        .transactions
        .iter()
        .zip(&memos)
        .filter(|(_, m)| !matches!(m, Some(std::borrow::Cow::Owned(_))))
        .map(|(t, _)| t.seq)
        .collect();
    insert_rows(c, "INSERT INTO log_leaves (idx, seq, data, hash)", SKIP, 4, &ch.log_leaves, |b, l| {
        let data: &[u8] = if l.seq != 0 && with_rows.contains(&l.seq) { &[] } else { &l.data };
        b.push_bind(l.index as i64).push_bind(l.seq).push_bind(data).push_bind(l.hash.as_slice());
    })
    .await?;
    insert_rows(c, "INSERT INTO log_hashes (idx, hash)", SKIP, 2, &ch.log_hashes, |b, (i, h)| {
        b.push_bind(*i as i64).push_bind(h.as_slice());
    })
    .await?;
    // MyKey ID events are few: one statement each links the row to its leaf.
    for (id, index) in &ch.usage {
        let id = id.to_string();
        sqlx::query("UPDATE mykey_id_events SET leaf_index = $1 WHERE id = $2")
            .bind(*index as i64)
            .bind(id.as_str())
            .execute(&mut *c)
            .await?;
    }
    sqlx::query("UPDATE materialized SET through_batch = $1 WHERE id = 1").bind(through).execute(&mut *c).await?;
    tx.commit().await.context("committing materialised batches")?;
    Ok(())
}
