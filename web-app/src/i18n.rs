//! Japanese first, English on request: every text of the app by key.

/// The language shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// 日本語.
    Ja,
    /// English.
    En,
}

impl Lang {
    /// The `lang` attribute.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }
}

/// The rules a text may name, as `{name}`: each is the rule's one constant.
fn rule_numbers() -> [(&'static str, String); 5] {
    use mykey_core::rules;
    [
        ("{reserved_days}", rules::RESERVED_WAIT_DAYS.to_string()),
        ("{warning_days}", rules::EXPIRY_WARNING_DAYS.to_string()),
        ("{pin_tries}", rules::AUTH_PIN_TRIES.to_string()),
        ("{generations}", rules::MAX_GENERATIONS.to_string()),
        ("{failed_checks}", rules::MAX_FAILED_CHECKS.to_string()),
    ]
}

/// `raw` with its rule numbers filled in, made once per text: the texts are a fixed set, so
/// what this keeps is bounded by it.
fn filled(raw: &'static str) -> &'static str {
    thread_local! {
        static FILLED: std::cell::RefCell<std::collections::HashMap<&'static str, &'static str>> =
            Default::default();
    }
    FILLED.with(|f| {
        *f.borrow_mut().entry(raw).or_insert_with(|| {
            let text = rule_numbers().iter().fold(raw.to_owned(), |t, (name, n)| t.replace(name, n));
            Box::leak(text.into_boxed_str())
        })
    })
}

macro_rules! texts {
    ($($key:ident => ($ja:literal, $en:literal),)*) => {
        /// A text of the app.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[allow(non_camel_case_types, missing_docs)]
        pub enum T { $($key,)* }

        /// The text in `lang`, with the rules' numbers filled in.
        pub fn t(lang: Lang, key: T) -> &'static str {
            let raw = match (lang, key) {
                $((Lang::Ja, T::$key) => $ja, (Lang::En, T::$key) => $en,)*
            };
            if raw.contains('{') { filled(raw) } else { raw }
        }
    };
}

texts! {
    term_title => ("窓口端末", "Counter terminal"),
    term_offline => ("ポイントクラウドに接続できません。接続が戻るまでお支払いはお受けできません。", "Cannot reach the points cloud. No payment can be taken until the connection is back."),
    term_code_invalid => ("ペアリングコードが正しくないか、使用済みか、期限切れです。店舗の管理画面で新しいコードを発行してください。", "The pairing code is wrong, used or expired. Make a new one in the shop's console."),
    term_revoked => ("この端末は登録を取り消されています。新しいペアリングコードで登録し直してください。", "This terminal was revoked. Enrol it again with a new pairing code."),
    term_clock => ("端末の時計がずれています。時刻を合わせてからやり直してください。", "This terminal's clock is off. Set the time and try again."),
    term_not_enough => ("ポイントが足りません。", "Not enough points."),
    term_no_mykey_id => ("このカードにはマイキーIDがありません。自治体ポイントナビで作成してください。", "This card has no MyKey ID. Create one on Municipal Points Navi."),
    term_this_device => ("この端末", "This terminal"),
    term_shop => ("店舗番号", "shop"),
    term_name_invalid => ("端末の名前を64文字以内で入力してください。", "Give the terminal a name of at most 64 characters."),
    term_enrol_title => ("端末の登録", "Enrol this terminal"),
    term_enrol_hint => ("店舗の管理画面（またはAPI）で発行したペアリングコードを入力してください。コードは1回だけ、10分以内に使えます。この端末の鍵は端末の外に出ません。", "Type the pairing code made in the shop's console (or API). A code works once, within ten minutes. This terminal's key never leaves it."),
    term_code => ("ペアリングコード", "Pairing code"),
    term_name => ("端末の名前（例：レジ1）", "Terminal name (e.g. Till 1)"),
    term_enrol => ("登録する", "Enrol"),
    term_amount_invalid => ("金額は1以上の整数で入力してください。", "Enter a whole number of points, 1 or more."),
    term_amount_title => ("お支払い金額", "Amount to pay"),
    term_amount => ("金額（ポイント）", "Amount (points)"),
    term_next => ("カードの読み取りへ", "Read the card"),
    term_card_title => ("マイナンバーカードをリーダーにかざしてください", "Hold the My Number Card to the reader"),
    term_pin_title => ("利用者証明用電子証明書の暗証番号（4桁）", "PIN of the user-authentication certificate (4 digits)"),
    term_cancel => ("取消", "Cancel"),
    term_confirm_title => ("ご確認ください", "Please confirm"),
    term_usable_here => ("この店舗で使えるポイント", "Points usable at this shop"),
    term_none_usable => ("この店舗で使えるポイントはありません。", "No points usable at this shop."),
    term_pay => ("支払う", "Pay"),
    term_paid => ("お支払いが完了しました", "Paid"),
    term_paid_points => ("お支払い", "Paid"),
    term_paid_with => ("使ったポイント", "Points used"),
    term_left => ("残り", "Left"),
    term_when => ("日時", "Date and time"),
    term_transaction => ("取引番号", "Transaction"),
    term_leaf => ("記録番号（改ざん検知ログ）", "Log entry (tamper-evident history)"),
    term_receipt_qr => ("このQRコードで、取引が改ざん検知ログに記録されていることを確かめられます。", "Scan this code to check that the transaction is in the tamper-evident history."),
    receipt_title => ("レシートの記録の確認", "Check a receipt"),
    receipt_intro => ("レシートのQRコードが示す取引が、ポイントの改ざん検知ログ（誰でも検証できる取引の記録）に記録されているかを、お使いのブラウザの中で確かめます。", "Checks, in this browser, that the transaction a receipt's QR code names is in the points' tamper-evident history (a record anyone can verify)."),
    receipt_text => ("レシートの記録（QRコードの内容）", "The receipt's record (what its QR code holds)"),
    receipt_check => ("確かめる", "Check"),
    receipt_checking => ("ログに問い合わせています…", "Asking the log…"),
    receipt_ok => ("この取引は改ざん検知ログに記録されています。", "This transaction is in the tamper-evident history."),
    receipt_position => ("ログでの位置", "Position in the log"),
    receipt_checkpoint => ("確認に使った署名付きチェックポイント", "Signed checkpoint checked against"),
    receipt_entries => ("件", " entries"),
    receipt_witnesses => ("証人の連署", "Witness cosignatures"),
    receipt_err_not_a_receipt => ("レシートの記録として読み取れません。QRコードの内容をそのまま入力してください。", "This is not a receipt's record. Enter what the QR code holds, as it is."),
    receipt_err_not_yet => ("ログはまだこの取引までを公開していません。数秒後にもう一度お試しください。", "The log has not published this transaction yet. Try again in a few seconds."),
    receipt_err_not_in_log => ("ログにこのレシートの通りの取引はありません。レシートが改ざんされているか、ログが別の履歴を示しています。", "The log does not hold this transaction as printed: the receipt was altered, or the log shows another history."),
    receipt_err_checkpoint => ("ログのチェックポイントの署名を確認できませんでした。", "The log's checkpoint signature could not be verified."),
    receipt_err_unreachable => ("ログに問い合わせられませんでした。接続を確かめてもう一度お試しください。", "The log could not be reached. Check the connection and try again."),
    term_print => ("レシートを印刷", "Print the receipt"),
    term_next_customer => ("次のお客様", "Next customer"),
    term_municipal => ("自治体ポイント", "Municipal points"),
    term_settings => ("この端末の設定", "This terminal's settings"),
    term_forget_hint => ("登録を解除すると、この端末の鍵を削除します。再び使うには新しいペアリングコードで登録してください。店舗側でも端末の登録を取り消してください。", "Forgetting deletes this terminal's key. To use it again, enrol it with a new pairing code. Revoke it in the shop's console too."),
    term_forget => ("登録を解除する", "Forget this terminal"),
    site_name => ("自治体ポイントナビ", "Municipal Points Navi"),
    skip => ("本文へ移動", "Skip to content"),
    nav_top => ("トップ", "Home"),
    nav_create => ("マイキーID作成", "Create a MyKey ID"),
    nav_mypage => ("マイページ", "My page"),
    language => ("言語", "Language"),
    text_size => ("文字サイズ", "Text size"),
    size_large => ("大", "L"),
    size_medium => ("中", "M"),
    size_small => ("小", "S"),
    what_title => ("自治体ポイントとは", "What are municipal points?"),
    what_body => ("クレジットカードのポイントや航空会社のマイルを、地域のお店や公共施設、オンラインで使える自治体ポイントに交換できます。1ポイントは1円です。", "Convert credit-card points and air miles into municipal points you can spend in local shops, public facilities and online. 1 point = 1 yen."),
    steps_title => ("ご利用の流れ", "How it works"),
    step1 => ("マイナンバーカードを用意する", "Have your My Number Card"),
    step2 => ("マイキーIDを作成する", "Create a MyKey ID"),
    step3 => ("ポイントを交換する", "Convert your points"),
    step4 => ("残高を確認する", "Check your balance"),
    start => ("マイキーIDを作成する", "Create a MyKey ID"),
    municipalities_title => ("マイキープラットフォーム運用協議会の自治体一覧", "Municipalities on the MyKey Platform council"),
    nav_search => ("使えるポイントを探す", "Find usable points"),
    recommended_title => ("おすすめ自治体ポイント", "Recommended municipal points"),
    usable_shops => ("自治体ポイントが使える商店や美術館など", "Usable in shops, museums and more"),
    usable_online => ("自治体ポイントがオンラインで使える", "Usable online"),
    points_suffix => ("ポイント", " points"),
    to_search => ("地図とフリーワードで探す", "Search by map or by word"),
    set_up_title => ("設定済自治体ポイント一覧", "Municipal points set up"),
    libraries_title => ("図書館を探す", "Find a library"),
    libraries_body => ("マイナンバーカードを図書館利用カードとして使える自治体です。", "Municipalities where the My Number Card works as a library card."),
    faq_title => ("よくある質問", "FAQ"),
    faq_q1 => ("自治体ポイントはいくらとして使えますか？", "What is a municipal point worth?"),
    faq_a1 => ("1ポイント＝1円分として、商店での買物、公共施設の利用料、オンラインでの物産の購入などに使えます。", "1 point = 1 yen: shopping, public facility fees, local products online and more."),
    faq_q2 => ("交換したポイントはどこに入りますか？", "Where do converted points go?"),
    faq_a2 => ("まず留保ポイントになります。{reserved_days}日以内に使いたい自治体を選んで移せます。選ばなかった分は{reserved_days}日後にお住まいの自治体のポイントになります。", "They arrive as reserved points. Within {reserved_days} days you can assign them to any municipality taking part; what is left moves to your home municipality after {reserved_days} days."),
    faq_q3 => ("ポイントに有効期限はありますか？", "Do points expire?"),
    faq_a3 => ("あります。期限は自治体ごとに決まり、マイページで次に失効するポイントと日付を確認できます。期限の{warning_days}日前にお知らせメールを送ります（希望した方のみ）。", "Yes. Each municipality sets its own period; my page shows the next points to expire and when. If you chose it, an e-mail reminds you {warning_days} days before."),
    faq_q4 => ("マイナンバー（12桁の番号）は使われますか？", "Is my 12-digit My Number used?"),
    faq_a4 => ("使いません。カードの利用者証明用電子証明書だけで本人を確認し、マイナンバーを読み取ることも保存することもありません。", "No. Only the card's user-authentication certificate identifies you; the My Number is never read or stored."),
    contact_title => ("お問い合わせ", "Contact"),
    contact_body => ("ポイントの付与・利用についてはポイントを発行した自治体へ、ポイントやマイルの交換については交換元の企業へお問い合わせください。", "For granting and spending points, contact the municipality that issued them; for converting points or miles, contact the company they came from."),
    search_title => ("使えるポイントを選ぼう", "Find points you can use"),
    map_title => ("都道府県から探す", "Search by prefecture"),
    map_hint => ("地図の都道府県を選ぶと、使えるポイントが表示されます。色の濃い都道府県には設定済の自治体ポイントがあります。", "Choose a prefecture on the map to see the points usable there. Darker prefectures have municipal points set up."),
    map_select => ("一覧から都道府県を選ぶ", "Or choose a prefecture from the list"),
    map_set_up => ("（自治体ポイントあり）", "(points set up)"),
    map_none => ("この都道府県にはマイキープラットフォーム運用協議会の自治体がまだありません。", "No municipality of this prefecture is on the council yet."),
    svc_shops => ("商店等", "Shops"),
    svc_online => ("めいぶつチョイス", "Online shop"),
    svc_library => ("図書館", "Library"),
    svc_preparing => ("準備中", "Preparing"),
    free_title => ("なんでも検索（フリーワード検索）", "Search anything (free words)"),
    free_label => ("欲しいもの、自治体名、お店の名前", "A product, a municipality or a shop"),
    free_hint => ("スペースで区切ると、すべての言葉を含むものを探します。", "Separate words with spaces to find what has all of them."),
    free_invalid => ("64文字以内、4語までで入力してください。", "Use at most 64 characters and 4 words."),
    free_count => ("検索結果：", "Results: "),
    free_municipalities => ("自治体", "Municipalities"),
    free_shops => ("お店・施設・オンラインストア", "Shops, facilities and online stores"),
    free_products => ("めいぶつチョイスの商品", "Online shop products"),
    loading => ("読み込み中…", "Loading…"),
    load_failed => ("読み込めませんでした。時間をおいて再度お試しください。", "Could not load. Please try again later."),
    create_title => ("マイキーIDの作成", "Create your MyKey ID"),
    card_step => ("1. カードの読み取り方法を選ぶ", "1. Choose how to read your card"),
    bridge_native => ("カードリーダー（mykey拡張機能）", "Card reader (mykey extension)"),
    bridge_webusb => ("PaSoRi（RC-S380 / RC-S300）", "PaSoRi (RC-S380 / RC-S300)"),
    bridge_virtual => ("デモ：仮想カードで試す（本物のカードではありません）", "Demo: try with a virtual card (not a real card)"),
    bridge_unavailable => ("この方法は使えません", "Not available here"),
    pin_step => ("2. 利用者証明用電子証明書の暗証番号", "2. PIN of the user-authentication certificate"),
    pin_label => ("暗証番号（数字4桁）", "PIN (4 digits)"),
    pin_hint => ("{pin_tries}回間違えるとロックされ、市区町村の窓口での初期化が必要になります。", "After {pin_tries} wrong tries the PIN is locked and only your municipal office can reset it."),
    tries_left => ("残り回数", "Tries left"),
    demo_pin => ("デモ用の仮想カードの暗証番号は 1234 です。", "The demo card's PIN is 1234."),
    read_card => ("カードを読み取る", "Read the card"),
    pin_wrong => ("暗証番号が違います。ロックされるまでの残り回数：", "Wrong PIN. Tries left before it locks: "),
    pin_blocked => ("暗証番号がロックされています。市区町村の窓口で初期化してください。", "The PIN is locked. Your municipal office can reset it."),
    pin_format => ("暗証番号は数字4桁です。", "The PIN is 4 digits."),
    already => ("このカードには既にマイキーIDがあります：", "This card already has a MyKey ID: "),
    candidate_step => ("3. マイキーIDを決める", "3. Choose your MyKey ID"),
    candidate_rule => ("半角の英大文字と数字で8文字です。", "8 half-width upper-case letters and digits."),
    generate => ("自動生成する", "Generate one"),
    generations_left => ("自動生成の残り回数", "Generations left"),
    final_candidate => ("{generations}回目の自動生成のため、このIDで登録します。", "This is the last generated ID ({generations} of {generations}): it will be registered."),
    own_choice => ("希望するID", "The ID you want"),
    check => ("重複チェック", "Check availability"),
    available => ("このIDは使えます。", "This ID is available."),
    taken_generated => ("{failed_checks}回続けて使用中だったため、IDを自動生成しました。", "It was taken {failed_checks} times, so an ID was generated for you."),
    candidate_now => ("登録するID", "ID to register"),
    next => ("次へ", "Next"),
    back => ("戻る", "Back"),
    form_step => ("4. パスワード・通知・基本自治体", "4. Password, notices and home municipality"),
    password => ("パスワード", "Password"),
    password_again => ("パスワード（確認）", "Password (again)"),
    rule_length => ("6文字以上16文字以内", "6 to 16 characters"),
    rule_chars => ("半角英数字・記号のみ", "Half-width letters, digits and symbols only"),
    rule_match => ("確認用と一致", "Both entries match"),
    email => ("メールアドレス（任意）", "E-mail (optional)"),
    email_again => ("メールアドレス（確認）", "E-mail (again)"),
    notices => ("メールで受け取るお知らせ", "Notices by e-mail"),
    notice_granted => ("ポイント付与（自治体ポイント・イベントポイント）", "Points granted (municipal and event points)"),
    notice_expired => ("ポイントの失効", "Points expired"),
    notice_settings => ("パスワード・設定の変更", "Password or settings changed"),
    notice_id => ("マイキーIDの登録・変更・廃止", "MyKey ID registered, changed or revoked"),
    notice_payments => ("ポイントでの支払いと返金のすべて、サービスIDの連携と解除、継続支払いの許可", "Every payment and refund in points, service IDs linked or unlinked, permissions to charge"),
    prefecture => ("都道府県", "Prefecture"),
    municipality => ("市区町村", "Municipality"),
    choose => ("選択してください", "Choose"),
    home_required => ("基本自治体を選んでください。", "Choose your home municipality."),
    confirm_step => ("5. 確認", "5. Confirm"),
    register => ("登録する", "Register"),
    done_title => ("マイキーIDを作成しました", "Your MyKey ID is ready"),
    go_mypage => ("マイページへ", "Go to my page"),
    mypage_title => ("マイページ", "My page"),
    my_nav => ("マイページのメニュー", "My page menu"),
    my_balances => ("残高", "Balances"),
    my_history => ("ポイント履歴", "Points history"),
    my_coupons => ("クーポン・留保ポイント", "Coupons and reserved points"),
    my_links => ("ID連携・施設", "Linked IDs and facilities"),
    my_settings => ("お知らせ・パスワード", "Notices and password"),
    my_card_id => ("マイキーIDとカード", "MyKey ID and card"),
    login_title => ("ログイン", "Log in"),
    mykey_id => ("マイキーID", "MyKey ID"),
    login => ("ログインする", "Log in"),
    logout => ("ログアウト", "Log out"),
    balances => ("ポイント残高", "Point balances"),
    kind => ("種類", "Kind"),
    points => ("ポイント", "Points"),
    kind_reserved => ("留保ポイント", "Reserved points"),
    kind_municipal => ("自治体ポイント", "Municipal points"),
    kind_event => ("イベントポイント", "Event points"),
    usage => ("利用履歴", "Usage history"),
    ev_registered => ("マイキーIDを登録", "MyKey ID registered"),
    ev_login_card => ("カードでログイン", "Logged in with the card"),
    ev_login_password => ("パスワードでログイン", "Logged in with the password"),
    ev_settings_changed => ("設定を変更", "Settings changed"),
    ev_password_changed => ("パスワードを変更", "Password changed"),
    ev_changed_away => ("マイキーIDを変更（旧ID）", "MyKey ID changed (old ID)"),
    ev_changed_to => ("マイキーIDを変更（新ID）", "MyKey ID changed (new ID)"),
    ev_revoked => ("マイキーIDを廃止", "MyKey ID revoked"),
    patrons_title => ("図書館などの利用者カード（ワンカード）", "Library and facility cards (one card)"),
    patrons_hint => ("施設の窓口でマイナンバーカードと暗証番号を使って登録すると、その施設ではマイナンバーカードが利用者カードになります。施設にはその施設の利用者番号だけが伝わります。", "Register at a facility's counter with your card and PIN, and your My Number Card becomes that facility's card. The facility learns only its own patron number."),
    patrons_none => ("登録した施設はありません。", "No facility registered."),
    ev_facility_linked => ("施設の利用者番号と連携", "Linked to a facility's patron number"),
    ev_facility_lookup => ("施設でカードを利用", "Card used at a facility"),
    ev_facility_unlinked => ("施設の利用者番号との連携を解除", "Facility link removed"),
    ev_card_rebound => ("新しいカードを登録", "Renewed card bound"),
    coupon_title => ("クーポンコードの入力", "Redeem a coupon code"),
    coupon_label => ("クーポンコード（16文字）", "Coupon code (16 characters)"),
    redeem => ("交換する", "Redeem"),
    redeemed => ("留保ポイントとして受け取りました：", "Received as reserved points: "),
    coupon_typo => ("クーポンコードに入力誤りがあります。クーポンをもう一度ご確認ください。", "The coupon code has a typo. Please check it against the coupon."),
    coupon_invalid => ("このクーポンコードは発行されていません。", "This coupon code was never issued."),
    coupon_expired => ("このクーポンコードは有効期限が切れています。", "This coupon code has expired."),
    coupon_used => ("このクーポンコードは既に使われています。", "This coupon code was already used."),
    assign_title => ("留保ポイントを自治体ポイントにする", "Turn reserved points into municipal points"),
    amount => ("ポイント数", "Points"),
    assign => ("移す", "Assign"),
    assigned => ("自治体ポイントにしました：", "Assigned: "),
    err_amount => ("1以上の整数で、留保ポイント以下にしてください。", "Enter a whole number from 1 up to your reserved points."),
    ev_service_linked => ("サービスIDを連携", "Service ID linked"),
    ev_service_unlinked => ("サービスIDの連携を解除", "Service ID unlinked"),
    ev_mandate_granted => ("継続支払いを許可", "Permission to charge granted"),
    ev_mandate_charged => ("継続支払いの許可による支払い", "Charged under a permission"),
    ev_mandate_revoked => ("継続支払いの許可を取り消し", "Permission to charge revoked"),
    mandates_title => ("継続支払いの許可", "Permissions to charge"),
    mandates_hint => ("連携したオンラインショップに、あなたがその場にいなくても上限の範囲で支払うことを許可したものです。許可はすぐに取り消せます。取り消すと、そのショップはこの許可で支払いを受けられません。", "Online shops you linked and allowed to take points within limits without you being there. Revoke a permission and the shop can no longer charge under it, at once."),
    mandates_none => ("許可はありません。", "No permission granted."),
    mandate_terms => ("上限", "Limits"),
    mandate_per_charge => ("1回あたり", "per charge"),
    mandate_per_month => ("1か月あたり", "per month"),
    mandate_until => ("有効期限", "until"),
    mandate_this_month => ("今月の支払い", "Charged this month"),
    mandate_active => ("有効", "Active"),
    mandate_revoked => ("取り消し済み", "Revoked"),
    mandate_ended => ("期限切れ", "Ended"),
    mandate_revoke => ("許可を取り消す", "Revoke"),
    mandate_charges => ("最近の支払い", "Latest charges"),
    links_title => ("サービスIDの登録（ID連携）", "Service IDs (ID linkage)"),
    links_hint => ("提携企業（マイレージなど）やめいぶつチョイス・セキュリテの会員IDとの連携は、そのサイトにログインして「マイキーIDと連携」から行います。ここでは連携を確認し、解除できます。", "Link your member ID at a partner (miles and points) or at the online shop or the crowdfunding site from that site, signed in there (\"Link with MyKey ID\"). Here you see your links and can cut them."),
    link_unproven => ("（未確認：以前にこの画面で入力された連携です。ポイントは移行されません。提携先のサイトで連携し直してください）", "(unconfirmed: typed here before links were confirmed; no points move. Link again from the partner's site)"),
    unlink_password => ("解除するにはパスワードを入力してください", "Type your password to cut a link"),
    next_expiry => ("次に失効するポイント", "Next to expire"),
    moves_home_before => ("留保ポイントは", "Your reserved points move to your home municipality on "),
    moves_home_after => ("にお住まいの自治体のポイントになります。それまでは下の「留保ポイントの割り当て」で使いたい自治体を選べます。", ". Until then you can assign them to any municipality below."),
    points_history => ("ポイント履歴", "Points history"),
    history_account => ("ポイントの種類", "Points"),
    history_kind => ("内容", "What"),
    history_all => ("すべて", "All"),
    history_from => ("開始日", "From"),
    history_to => ("終了日", "To"),
    history_show => ("表示する", "Show"),
    history_date => ("日付", "Date"),
    history_balance => ("残高", "Balance"),
    history_memo => ("メモ", "Memo"),
    history_none => ("該当する履歴はありません。", "No entries."),
    history_more => ("さらに表示", "Show more"),
    err_period => ("期間の指定を確認してください（開始日は終了日以前）。", "Check the period (the start must not be after the end)."),
    tx_payment => ("利用", "Spent"),
    tx_grant => ("付与", "Granted"),
    tx_conversion => ("交換", "Converted"),
    tx_assignment => ("割り当て・移行", "Assigned / moved"),
    tx_expiry => ("失効", "Expired"),
    tx_adjustment => ("調整", "Adjusted"),
    tx_refund => ("返金", "Refunded"),
    change_id_title => ("マイキーIDの変更", "Change your MyKey ID"),
    change_id => ("この候補に変更する", "Change to this candidate"),
    err_no_candidate => ("先に候補を自動生成するか、希望のIDを確認してください。", "Generate a candidate or check your own choice first."),
    id_changed => ("マイキーIDを変更しました：", "Your MyKey ID is now "),
    card_login_title => ("マイナンバーカードでログイン", "Log in with your My Number Card"),
    card_login => ("カードを読み取ってログイン", "Read the card and log in"),
    err_card_no_id => ("このカードにはマイキーIDがありません。「マイキーID作成」から作成してください。", "This card has no MyKey ID yet. Create one first."),
    rebind_title => ("更新したカードの再登録", "Re-bind a renewed card"),
    card_expired => ("登録されているマイナンバーカードの電子証明書は有効期限が切れています。更新したカードを登録してください。", "The certificate of the My Number Card bound to this ID has expired. Please bind your renewed card."),
    card_revoked => ("登録されているマイナンバーカードの電子証明書は失効しています。更新したカードを登録してください。", "The certificate of the My Number Card bound to this ID has been revoked. Please bind your renewed card."),
    rebind_hint => ("マイナンバーカードや電子証明書を更新したときは、新しいカードでこのマイキーIDを引き継ぎます。", "After renewing your My Number Card or its certificate, read the new card to keep this MyKey ID."),
    rebind => ("新しいカードを読み取る", "Read the new card"),
    rebound => ("新しいカードを登録しました。次回から新しいカードでログインできます。", "The new card is bound. Log in with it from now on."),
    err_card_bound => ("このカードは別のマイキーIDに登録済みです。", "This card is bound to another MyKey ID."),
    partner => ("提携企業", "Partner"),
    service_id => ("サービスID（会員番号など）", "Service ID (member number)"),
    unlink => ("解除", "Unlink"),
    unlinked => ("連携を解除しました。", "The link was cut."),
    settings_title => ("メールアドレス・お知らせの設定", "E-mail and notices"),
    save => ("保存する", "Save"),
    saved => ("保存しました。", "Saved."),
    password_title => ("パスワードの変更", "Change the password"),
    current_password => ("現在のパスワード", "Current password"),
    new_password => ("新しいパスワード", "New password"),
    new_password_again => ("新しいパスワード（確認）", "New password (again)"),
    change => ("変更する", "Change"),
    password_changed => ("パスワードを変更しました。ほかの端末のログインは終了しました。", "Password changed. Other sessions have ended."),
    err_current_password => ("現在のパスワードが違います。", "The current password is wrong."),
    revoke_title => ("マイキーIDの廃止", "Revoke the MyKey ID"),
    revoke_hint => ("廃止したマイキーIDは二度と使えません。ポイントは残り、同じカードで新しいマイキーIDを作成できます。", "A revoked MyKey ID can never be used again. Your points stay, and the same card can create a new MyKey ID."),
    revoke => ("廃止する", "Revoke"),
    revoked => ("マイキーIDを廃止しました。", "The MyKey ID is revoked."),
    server_error => ("サーバーで問題が起きました。入力内容はそのままです。もう一度お試しください。", "The server had a problem. Your input is kept; please try again."),
    required => ("入力してください。", "Please fill this in."),
    err_taken => ("このIDは既に使われています。別のIDを入力してください。", "This ID is already in use. Please try another."),
    err_invalid_id => ("IDは半角の英大文字と数字で8文字です。", "An ID is 8 half-width upper-case letters and digits."),
    err_used_up => ("自動生成は{generations}回までです。表示中のIDで登録します。", "IDs can be generated {generations} times; the one shown will be registered."),
    err_card_rejected => ("カードの証明書を確認できませんでした：", "The card's certificate was not accepted: "),
    err_rate_limited => ("試行回数が多すぎます。しばらくしてからお試しください。", "Too many tries. Please wait a while and try again."),
    err_login_failed => ("マイキーIDまたはパスワードが違います。", "The MyKey ID or the password is wrong."),
    err_email => ("メールアドレスの形式が正しくありません。", "This is not a valid e-mail address."),
    err_email_match => ("確認用のメールアドレスが一致しません。", "The two e-mail addresses differ."),
    err_notices_need_email => ("お知らせを受け取るにはメールアドレスを入力してください。", "Notices need an e-mail address."),
    err_password => ("パスワードの条件を満たしていません。", "The password does not meet the rules."),
    err_no_card => ("カードが見つかりません。カードをリーダーに置いてください。", "No card found. Put the card on the reader."),
    err_no_reader => ("カードリーダーが見つかりません：", "No card reader found: "),
    err_card_not_allowed => ("カードの利用が許可されませんでした。mykey 拡張機能の画面で許可してください。", "Using the card was not allowed. Allow it in the mykey extension's window."),
    err_card_removed => ("カードが離れました。カードを置いたままもう一度お試しください。", "The card was moved away. Keep it on the reader and try again."),
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn rule_numbers_come_from_the_rules() {
        let faq = t(Lang::En, T::faq_a2);
        assert!(faq.contains(&format!("Within {} days", mykey_core::rules::RESERVED_WAIT_DAYS)), "{faq}");
        assert!(!faq.contains('{'));
        let expiry = t(Lang::En, T::faq_a3);
        assert!(expiry.contains(&format!("{} days before", mykey_core::rules::EXPIRY_WARNING_DAYS)), "{expiry}");
        for lang in [Lang::Ja, Lang::En] {
            for key in [T::pin_hint, T::final_candidate, T::taken_generated, T::err_used_up, T::faq_a2, T::faq_a3] {
                assert!(!t(lang, key).contains('{'), "{:?}", t(lang, key));
            }
        }
    }
}
