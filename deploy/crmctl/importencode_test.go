package main

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

// TestAppendRecordDecodesAsMarshalled: a record encoded by appendRecord
// decodes to the same record as proto.Marshal's encoding, for every kind
// of value, zero values (which a oneof still carries) and an empty kind
// included, and with the fields a protojson line may set besides.
func TestAppendRecordDecodesAsMarshalled(t *testing.T) {
	t.Parallel()
	rec := &crmv1.Record{
		Module: "Leads", Id: "l1", Version: 7, Url: "https://crm.example/l1",
		Owner:      &commonv1.CrmUserRef{Id: "u1"},
		ModifiedAt: timestamppb.New(timestamppb.Now().AsTime()),
		Fields: map[string]*crmv1.FieldValue{
			"Last_Name":      {Kind: &crmv1.FieldValue_Text{Text: "Watson"}},
			"Empty_Text":     {Kind: &crmv1.FieldValue_Text{Text: ""}},
			"Annual_Revenue": {Kind: &crmv1.FieldValue_Number{Number: 150000.5}},
			"Zero":           {Kind: &crmv1.FieldValue_Number{Number: 0}},
			"Email_Opt_Out":  {Kind: &crmv1.FieldValue_Boolean{Boolean: true}},
			"False":          {Kind: &crmv1.FieldValue_Boolean{Boolean: false}},
			"Date_of_Birth":  {Kind: &crmv1.FieldValue_Date{Date: "1980-04-01"}},
			"Created_Time":   {Kind: &crmv1.FieldValue_Datetime{Datetime: timestamppb.New(timestamppb.Now().AsTime())}},
			"Tag":            {Kind: &crmv1.FieldValue_Multi{Multi: &crmv1.StringList{Values: []string{"CRM", "Chat"}}}},
			"Owner":          {Kind: &crmv1.FieldValue_Lookup{Lookup: &crmv1.LookupValue{Name: "Ada Admin", Module: "Users"}}},
			"No_Kind":        {},
		},
	}
	data, err := appendRecord([]byte("scratch"), rec)
	data = data[len("scratch"):]
	if err != nil {
		t.Fatal(err)
	}
	got := &crmv1.Record{}
	if err := proto.Unmarshal(data, got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(rec, got) {
		t.Errorf("decoded %v, want %v", got, rec)
	}
	if len(data) != proto.Size(rec) {
		t.Errorf("%d bytes, proto.Marshal writes %d", len(data), proto.Size(rec))
	}
}
