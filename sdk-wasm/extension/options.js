// The origins the user allowed, each with a button that takes the permission back at once.
'use strict';
async function show() {
  const approved = (await chrome.storage.local.get('approved')).approved || {};
  const list = document.getElementById('sites');
  list.replaceChildren();
  const origins = Object.keys(approved).sort();
  document.getElementById('none').hidden = origins.length > 0;
  for (const origin of origins) {
    const li = document.createElement('li');
    const name = document.createElement('span');
    name.textContent = origin;
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.textContent = '取り消す / Remove';
    remove.setAttribute('aria-label', '取り消す / Remove ' + origin);
    remove.addEventListener('click', async () => {
      const now = (await chrome.storage.local.get('approved')).approved || {};
      delete now[origin];
      await chrome.storage.local.set({ approved: now });
      show();
    });
    li.append(name, remove);
    list.append(li);
  }
}
show();
