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

macro_rules! texts {
    ($($key:ident => ($ja:literal, $en:literal),)*) => {
        /// A text of the app.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[allow(non_camel_case_types, missing_docs)]
        pub enum T { $($key,)* }

        /// The text in `lang`.
        pub fn t(lang: Lang, key: T) -> &'static str {
            match (lang, key) {
                $((Lang::Ja, T::$key) => $ja, (Lang::En, T::$key) => $en,)*
            }
        }
    };
}

texts! {
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
    municipalities_title => ("自治体ポイントを導入している自治体", "Municipalities with municipal points"),
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
    pin_hint => ("3回間違えるとロックされ、市区町村の窓口での初期化が必要になります。", "After 3 wrong tries the PIN is locked and only your municipal office can reset it."),
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
    final_candidate => ("3回目の自動生成のため、このIDで登録します。", "This is the third generated ID: it will be registered."),
    own_choice => ("希望するID", "The ID you want"),
    check => ("重複チェック", "Check availability"),
    available => ("このIDは使えます。", "This ID is available."),
    taken_generated => ("3回続けて使用中だったため、IDを自動生成しました。", "It was taken three times, so an ID was generated for you."),
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
    prefecture => ("都道府県", "Prefecture"),
    municipality => ("市区町村", "Municipality"),
    choose => ("選択してください", "Choose"),
    home_required => ("基本自治体を選んでください。", "Choose your home municipality."),
    confirm_step => ("5. 確認", "5. Confirm"),
    register => ("登録する", "Register"),
    done_title => ("マイキーIDを作成しました", "Your MyKey ID is ready"),
    go_mypage => ("マイページへ", "Go to my page"),
    mypage_title => ("マイページ", "My page"),
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
    links_title => ("ID連携（提携企業のサービスID）", "ID linkage (partner service IDs)"),
    partner => ("提携企業", "Partner"),
    service_id => ("サービスID（会員番号など）", "Service ID (member number)"),
    link => ("連携する", "Link"),
    unlink => ("解除", "Unlink"),
    linked => ("連携しました。", "Linked."),
    err_service_taken => ("このサービスIDは別のマイキーIDと連携済みです。", "This service ID is linked to another MyKey ID."),
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
    server_error => ("サーバーで問題が起きました。入力内容はそのままです。もう一度お試しください。", "The server had a problem. Your input is kept; please try again."),
    required => ("入力してください。", "Please fill this in."),
    err_taken => ("このIDは既に使われています。別のIDを入力してください。", "This ID is already in use. Please try another."),
    err_invalid_id => ("IDは半角の英大文字と数字で8文字です。", "An ID is 8 half-width upper-case letters and digits."),
    err_used_up => ("自動生成は3回までです。表示中のIDで登録します。", "IDs can be generated 3 times; the one shown will be registered."),
    err_card_rejected => ("カードの証明書を確認できませんでした：", "The card's certificate was not accepted: "),
    err_rate_limited => ("試行回数が多すぎます。しばらくしてからお試しください。", "Too many tries. Please wait a while and try again."),
    err_login_failed => ("マイキーIDまたはパスワードが違います。", "The MyKey ID or the password is wrong."),
    err_email => ("メールアドレスの形式が正しくありません。", "This is not a valid e-mail address."),
    err_email_match => ("確認用のメールアドレスが一致しません。", "The two e-mail addresses differ."),
    err_notices_need_email => ("お知らせを受け取るにはメールアドレスを入力してください。", "Notices need an e-mail address."),
    err_password => ("パスワードの条件を満たしていません。", "The password does not meet the rules."),
    err_no_card => ("カードが見つかりません。カードをリーダーに置いてください。", "No card found. Put the card on the reader."),
    err_no_reader => ("カードリーダーが見つかりません：", "No card reader found: "),
    err_card_removed => ("カードが離れました。カードを置いたままもう一度お試しください。", "The card was moved away. Keep it on the reader and try again."),
}
