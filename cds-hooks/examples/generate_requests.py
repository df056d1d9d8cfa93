import json, datetime
NOW = datetime.datetime(2026, 11, 20, 12, 0, 0)
def day(n): return (NOW - datetime.timedelta(days=n)).date().isoformat()
def ts(h): return (NOW - datetime.timedelta(hours=h)).strftime('%Y-%m-%dT%H:%M:%SZ')
ICD="http://hl7.org/fhir/sid/icd-10-cm"; SCT="http://snomed.info/sct"; LOINC="http://loinc.org"; CPT="http://www.ama-assn.org/go/cpt"; RX="http://www.nlm.nih.gov/research/umls/rxnorm"; UCUM="http://unitsofmeasure.org"
def patient(pid, birth, gender, given, family):
    return {"resourceType":"Patient","id":pid,
      "meta":{"profile":["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
      "identifier":[{"system":"urn:oid:2.16.840.1.113883.3.7418.2.1","value":"MRN-"+pid}],
      "name":[{"family":family,"given":[given]}],"gender":gender,"birthDate":birth}
def cond(cid, pid, system, code, display, onset, cat="problem-list-item", status="active"):
    return {"resourceType":"Condition","id":cid,
      "meta":{"profile":["http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition-problems-health-concerns"]},
      "clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-clinical","code":status}]},
      "verificationStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-ver-status","code":"confirmed"}]},
      "category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/condition-category","code":cat}]}],
      "code":{"coding":[{"system":system,"code":code,"display":display}],"text":display},
      "subject":{"reference":"Patient/"+pid},"onsetDateTime":onset,"recordedDate":onset}
def proc(prid, pid, system, code, display, when):
    return {"resourceType":"Procedure","id":prid,"status":"completed",
      "code":{"coding":[{"system":system,"code":code,"display":display}],"text":display},
      "subject":{"reference":"Patient/"+pid},"performedDateTime":when}
def vitals(oid, pid, when, spo2=None, hr=None):
    comps=[]
    if hr is not None: comps.append({"code":{"coding":[{"system":LOINC,"code":"8867-4","display":"Heart rate"}]},"valueQuantity":{"value":hr,"unit":"/min","system":UCUM,"code":"/min"}})
    if spo2 is not None: comps.append({"code":{"coding":[{"system":LOINC,"code":"59408-5","display":"Oxygen saturation in Arterial blood by Pulse oximetry"}]},"valueQuantity":{"value":spo2,"unit":"%","system":UCUM,"code":"%"}})
    return {"resourceType":"Observation","id":oid,"status":"final",
      "category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],
      "code":{"coding":[{"system":LOINC,"code":"85353-1","display":"Vital signs, weight, height, head circumference, oxygen saturation and BMI panel"}]},
      "subject":{"reference":"Patient/"+pid},"effectiveDateTime":when,"component":comps}
def ddimer(oid, pid, when, value, unit="ng/mL"):
    return {"resourceType":"Observation","id":oid,"status":"final",
      "category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],
      "code":{"coding":[{"system":LOINC,"code":"48065-7","display":"Fibrin D-dimer FEU [Mass/volume] in Platelet poor plasma"}]},
      "subject":{"reference":"Patient/"+pid},"effectiveDateTime":when,"issued":when,
      "valueQuantity":{"value":value,"unit":unit,"system":UCUM,"code":unit}}
def enc(eid, pid, cls, start, end=None, reason=None):
    e={"resourceType":"Encounter","id":eid,"status":"finished" if end else "in-progress",
      "class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":cls},
      "subject":{"reference":"Patient/"+pid},"period":{"start":start}}
    if end: e["period"]["end"]=end
    if reason: e["reasonCode"]=[{"coding":[reason],"text":reason["display"]}]
    return e
def medreq(mid, pid, code, display, when):
    return {"resourceType":"MedicationRequest","id":mid,"status":"active","intent":"order",
      "medicationCodeableConcept":{"coding":[{"system":RX,"code":code,"display":display}],"text":display},
      "subject":{"reference":"Patient/"+pid},"authoredOn":when}
def sreq(sid, pid, system, code, display, status, when=None):
    s={"resourceType":"ServiceRequest","id":sid,"status":status,"intent":"order",
      "code":{"coding":[{"system":system,"code":code,"display":display}],"text":display},
      "subject":{"reference":"Patient/"+pid}}
    if when: s["authoredOn"]=when
    return s
def bundle(resources):
    return {"resourceType":"Bundle","type":"searchset","total":len(resources),
      "entry":[{"fullUrl":"https://ehr.example.org/fhir/%s/%s"%(r["resourceType"],r["id"]),"resource":r,"search":{"mode":"match"}} for r in resources]}
def request(name, hook, pid, resources, encounter=None, drafts=None, n=1):
    by = lambda t: [r for r in resources if r["resourceType"]==t]
    pat = by("Patient")[0] if by("Patient") else None
    ctx={"userId":"Practitioner/dr-lee","patientId":pid}
    if encounter: ctx["encounterId"]=encounter["id"]
    if drafts is not None: ctx["draftOrders"]={"resourceType":"Bundle","type":"collection","entry":[{"resource":d} for d in drafts]}
    if hook=="order-select": ctx["selections"]=["ServiceRequest/"+drafts[0]["id"]]
    pre={"patient":pat,
      "conditions":bundle(by("Condition")),"observations":bundle(by("Observation")),
      "procedures":bundle(by("Procedure")),"medicationRequests":bundle(by("MedicationRequest")),
      "medicationStatements":bundle(by("MedicationStatement")),"encounters":bundle([r for r in by("Encounter")]),
      "serviceRequests":bundle(by("ServiceRequest")),"diagnosticReports":bundle(by("DiagnosticReport"))}
    if hook=="encounter-start": pre["encounter"]=encounter
    req={"hook":hook,"hookInstance":"5c0a7f8e-1b2d-4e3f-9a10-%012d"%n,"context":ctx,"prefetch":pre}
    json.dump(req, open(name+".request.json","w"), indent=2, ensure_ascii=False); open(name+".request.json","a").write("\n")

pain = lambda pid, side="left", d=2: cond("leg-pain-1", pid, ICD, "M79.662" if side=="left" else "M79.661", "Pain in %s lower leg"%side, day(d), cat="encounter-diagnosis")

p="pt-pe"
request("pe-warning-signs","patient-view",p,[patient(p,"1961-03-14","male","Walter","Okafor"), pain(p),
  cond("sob-1",p,ICD,"R06.02","Shortness of breath",day(0),cat="encounter-diagnosis"),
  vitals("vitals-1",p,ts(2),spo2=92,hr=108),
  proc("knee-1",p,SCT,"609588000","Total knee replacement",day(21))], n=1)
p="pt-preg"
request("pregnancy","patient-view",p,[patient(p,"1994-08-02","female","Maria","Santos"), pain(p),
  cond("preg-1",p,ICD,"Z33.1","Pregnant state, incidental",day(70)),
  cond("ga-1",p,ICD,"Z3A.11","11 weeks gestation of pregnancy",day(2),cat="encounter-diagnosis")], n=2)
p="pt-likely"
reason={"system":ICD,"code":"R22.42","display":"Localized swelling, mass and lump, left lower limb"}
e=enc("enc-ed-1",p,"EMER",ts(1),reason=reason)
request("dvt-likely","encounter-start",p,[patient(p,"1958-11-30","female","Joan","Baker"),
  cond("ca-1",p,ICD,"C50.911","Malignant neoplasm of unspecified site of right female breast",day(120)),
  cond("vte-1",p,ICD,"Z86.718","Personal history of other venous thrombosis and embolism",day(800)), e], encounter=e, n=3)
p="pt-unlikely"
request("dvt-unlikely","patient-view",p,[patient(p,"1959-05-20","male","Henry","Lam"), pain(p,"right"),
  proc("chole-1",p,SCT,"174495007","Total cholecystectomy and exploration of common bile duct",day(40)),
  ddimer("dd-1",p,ts(20),620)], n=4)
p="pt-eval"
drafts=[sreq("draft-dd-1",p,CPT,"85379","D-dimer, quantitative","draft")]
request("dvt-evaluation","order-select",p,[patient(p,"1983-02-11","female","Aisha","Rahman"), pain(p),
  enc("stay-1",p,"IMP",day(14),day(9))], drafts=drafts, n=5)
p="pt-fu"
request("follow-up","patient-view",p,[patient(p,"1990-07-07","male","Tom","Novak"), pain(p),
  cond("baker-1",p,ICD,"M71.22","Synovial cyst of popliteal space [Baker], left knee",day(3),cat="encounter-diagnosis")], n=6)
p="pt-none"
request("no-card","patient-view",p,[patient(p,"1975-01-15","female","Ruth","Meyer"),
  cond("htn-1",p,ICD,"I10","Essential (primary) hypertension",day(900)),
  medreq("med-1",p,"1037045","dabigatran etexilate 150 MG Oral Capsule",day(30))], n=7)
p="pt-sign"
drafts=[sreq("draft-us-1",p,CPT,"93971","Duplex scan of extremity veins; unilateral or limited study","draft")]
request("order-sign-ultrasound","order-sign",p,[patient(p,"1970-04-04","male","Omar","Haddad"), pain(p),
  medreq("med-2",p,"1037045","dabigatran etexilate 150 MG Oral Capsule",day(30)),
  proc("hip-1",p,SCT,"52734007","Total replacement of hip",day(30))], drafts=drafts, n=8)
