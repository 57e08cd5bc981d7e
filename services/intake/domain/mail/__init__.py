"""Email intake's pure side: a raw message parsed into facts (`parser`), and the rules that
turn those facts into a ticket, a message, a note or a refusal (`rules`)."""
