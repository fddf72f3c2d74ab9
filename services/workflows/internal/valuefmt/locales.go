package valuefmt

import (
	"slices"
	"strings"
)

// The locales are a table of our own rather than golang.org/x/text's
// formatter: it has no stable way to place a currency symbol, and golden
// files need output that no library upgrade changes.

// nbsp keeps "12 500,00 €" on one line.
const nbsp = "\u00a0"

type locale struct {
	tag            string
	decimal, group string
	symbolAfter    bool
	percent        string
	date, dateTime string
	yes, no        string
}

var locales = func() map[string]locale {
	m := map[string]locale{}
	for _, l := range []locale{
		{tag: "en-US", decimal: ".", group: ",", percent: "%", date: "Jan 2, 2006", dateTime: "Jan 2, 2006 3:04 PM MST", yes: "Yes", no: "No"},
		{tag: "en-GB", decimal: ".", group: ",", percent: "%", date: "2 Jan 2006", dateTime: "2 Jan 2006 15:04 MST", yes: "Yes", no: "No"},
		{tag: "en-IN", decimal: ".", group: ",", percent: "%", date: "2 Jan 2006", dateTime: "2 Jan 2006 3:04 PM MST", yes: "Yes", no: "No"},
		{tag: "fr-FR", decimal: ",", group: nbsp, symbolAfter: true, percent: nbsp + "%", date: "02/01/2006", dateTime: "02/01/2006 15:04 MST", yes: "Oui", no: "Non"},
		{tag: "de-DE", decimal: ",", group: ".", symbolAfter: true, percent: nbsp + "%", date: "02.01.2006", dateTime: "02.01.2006 15:04 MST", yes: "Ja", no: "Nein"},
		{tag: "es-ES", decimal: ",", group: ".", symbolAfter: true, percent: nbsp + "%", date: "02/01/2006", dateTime: "02/01/2006 15:04 MST", yes: "Sí", no: "No"},
		{tag: "it-IT", decimal: ",", group: ".", symbolAfter: true, percent: "%", date: "02/01/2006", dateTime: "02/01/2006 15:04 MST", yes: "Sì", no: "No"},
		{tag: "nl-NL", decimal: ",", group: ".", percent: "%", date: "02-01-2006", dateTime: "02-01-2006 15:04 MST", yes: "Ja", no: "Nee"},
		{tag: "pt-BR", decimal: ",", group: ".", percent: "%", date: "02/01/2006", dateTime: "02/01/2006 15:04 MST", yes: "Sim", no: "Não"},
		{tag: "ja-JP", decimal: ".", group: ",", percent: "%", date: "2006/01/02", dateTime: "2006/01/02 15:04 MST", yes: "はい", no: "いいえ"},
	} {
		m[strings.ToLower(l.tag)] = l
	}
	return m
}()

// Locales lists the supported locale tags, sorted.
func Locales() []string {
	var out []string
	for _, l := range locales {
		out = append(out, l.tag)
	}
	slices.Sort(out)
	return out
}

var symbols = map[string]string{
	"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "CNY": "CN¥", "KRW": "₩",
	"CAD": "CA$", "AUD": "A$", "BRL": "R$", "CHF": "CHF", "MXN": "MX$",
}

// currencyDigits lists the currencies without two decimals (ISO 4217).
var currencyDigits = map[string]int{"JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "VND": 0, "BHD": 3, "KWD": 3, "OMR": 3, "TND": 3}
