"""Bazaarvoice: approved reviews pulled (with a look-back behind the cursor), reviewers' e-mails decrypted, Annex Cloud
members found and points awarded once per review (flows.py pulls, rewards.py decides and awards)."""
